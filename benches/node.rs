//! node-oidc-provider, configured like warden for the side-by-side run:
//! client-credentials grant with `client_secret_basic`, ES256 JWT access
//! tokens for the resource `https://api.example.com` (15 minutes), opaque
//! tokens for introspection (it cannot introspect its JWTs), in-memory
//! storage, one Node process.
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{
    Args, Cred, Fixed, Outcome, Proc, Worker, active, any, drive, free_port, http1, wait_ready,
};

const SERVER_JS: &str = r#"
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK } from 'jose';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench' };
const clients = JSON.parse(process.env.CLIENTS).map(([client_id, client_secret]) => ({
  client_id, client_secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
  token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256',
}));
const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  scopes: ['risks:read', 'risks:write'],
  ttl: { ClientCredentials: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.example.com',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'risks:read risks:write',
        audience: resource,
        accessTokenTTL: 900,
        accessTokenFormat: resource === 'https://opaque.example.com' ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
"#;

fn install(dir: &std::path::Path) {
    if dir.join("node_modules/oidc-provider").exists() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"bench-node","private":true,"type":"module"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ok = Command::new("npm")
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "oidc-provider@9",
            "jose@6",
        ])
        .current_dir(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "npm install oidc-provider@9 failed");
}

pub async fn run(args: &Args) -> Vec<Outcome> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-node");
    install(&dir);
    std::fs::write(dir.join("server.mjs"), SERVER_JS).unwrap_or_else(|e| panic!("{e}"));
    let creds: Vec<Cred> = (0..args.connections.min(32))
        .map(|i| Cred {
            id: format!("bench-{i}"),
            secret: format!("secret-{i}-{}", "x".repeat(40)),
        })
        .collect();
    let clients: Vec<[String; 2]> = creds
        .iter()
        .map(|c| [c.id.clone(), c.secret.clone()])
        .collect();
    let port = free_port();
    let child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env(
            "CLIENTS",
            serde_json::to_string(&clients).unwrap_or_default(),
        )
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start node: {e}"));
    let _server = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    if !wait_ready(&format!("{base}/.well-known/openid-configuration")).await {
        panic!("node-oidc-provider never became ready");
    }
    super::print_rss("node-oidc-provider idle", _server.0.id());

    let host = format!("127.0.0.1:{port}");
    let pid = _server.0.id();
    let client = reqwest::Client::new();
    let n = args.connections;
    let pick = |i: usize| &creds[i % creds.len()];
    let mut out = Vec::new();
    let token: Vec<Box<dyn Worker>> = (0..n)
        .map(|i| {
            let c = pick(i);
            let req = http1::post_form(
                &host,
                "/token",
                (&c.id, &c.secret),
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", "https://api.example.com"),
                    ("scope", "risks:read risks:write"),
                ],
            );
            Box::new(Fixed { req, ok: any }) as Box<dyn Worker>
        })
        .collect();
    out.push(
        drive(
            "token (client_credentials)",
            &host,
            pid,
            args.seconds,
            token,
        )
        .await,
    );
    // oidc-provider issues no refresh token with client credentials.
    out.push(Outcome::empty("token (refresh_token)"));
    let mut intro: Vec<Box<dyn Worker>> = Vec::new();
    for i in 0..n {
        let c = pick(i);
        let t: Value = match client
            .post(format!("{base}/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", "https://opaque.example.com"),
                ("scope", "risks:read"),
            ])
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let token = t["access_token"].as_str().unwrap_or_default();
        let req = http1::post_form(
            &host,
            "/token/introspection",
            (&c.id, &c.secret),
            &[("token", token)],
        );
        intro.push(Box::new(Fixed { req, ok: active }));
    }
    out.push(drive("introspect (opaque token)", &host, pid, args.seconds, intro).await);
    let jwks: Vec<Box<dyn Worker>> = (0..n)
        .map(|_| {
            Box::new(Fixed {
                req: http1::get(&host, "/jwks"),
                ok: any,
            }) as Box<dyn Worker>
        })
        .collect();
    out.push(drive("jwks", &host, pid, args.seconds, jwks).await);
    out
}
