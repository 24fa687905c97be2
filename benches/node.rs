//! node-oidc-provider, configured like warden for the side-by-side run:
//! client-credentials grant with `client_secret_basic`, ES256 JWT access
//! tokens for the resource `https://api.example.com` (15 minutes), opaque
//! tokens for introspection (it cannot introspect its JWTs), in-memory
//! storage, one Node process.
use std::process::{Command, Stdio};

use hdrhistogram::Histogram;
use serde_json::Value;

use super::{Args, Cred, Outcome, Proc, Step, drive, free_port, ok200, post_form, wait_ready};

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
    std::fs::write(dir.join("package.json"), r#"{"name":"bench-node","private":true,"type":"module"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "oidc-provider@9", "jose@6"])
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
    let creds: Vec<Cred> =
        (0..args.connections.min(32)).map(|i| Cred { id: format!("bench-{i}"), secret: format!("secret-{i}-{}", "x".repeat(40)) }).collect();
    let clients: Vec<[String; 2]> = creds.iter().map(|c| [c.id.clone(), c.secret.clone()]).collect();
    let port = free_port();
    let child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("CLIENTS", serde_json::to_string(&clients).unwrap_or_default())
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start node: {e}"));
    let _server = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/.well-known/openid-configuration")).await;
    super::print_rss("node-oidc-provider idle", _server.0.id());

    let mut out = Vec::new();
    let (b1, c1) = (base.clone(), creds.clone());
    out.push(
        drive("token (client_credentials)", args.connections, args.seconds, move |client, i| {
            let (b, c) = (b1.clone(), c1[i % c1.len()].clone());
            async move {
                Box::new(move || {
                    let req = post_form(&client, &format!("{b}/token"), &c, vec![
                        ("grant_type".into(), "client_credentials".into()),
                        ("resource".into(), "https://api.example.com".into()),
                        ("scope".into(), "risks:read risks:write".into()),
                    ]);
                    Box::pin(async move { ok200(req.send().await).await })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );
    // No refresh tokens from the client-credentials grant in oidc-provider.
    out.push(Outcome {
        name: "token (refresh_token)".into(),
        ok: 0,
        errors: 0,
        seconds: 1.0,
        hist: Histogram::new(3).unwrap_or_else(|_| unreachable!()),
    });
    let (b3, c3) = (base.clone(), creds.clone());
    out.push(
        drive("introspect (opaque token)", args.connections, args.seconds, move |client, i| {
            let (b, c) = (b3.clone(), c3[i % c3.len()].clone());
            async move {
                let t: Value = post_form(&client, &format!("{b}/token"), &c, vec![
                    ("grant_type".into(), "client_credentials".into()),
                    ("resource".into(), "https://opaque.example.com".into()),
                    ("scope".into(), "risks:read".into()),
                ])
                .send()
                .await
                .ok()
                .map(|r| r.json())
                .unwrap_or_else(|| unreachable!())
                .await
                .unwrap_or(Value::Null);
                let token = t["access_token"].as_str().unwrap_or_default().to_owned();
                Box::new(move || {
                    let req = post_form(&client, &format!("{b}/token/introspection"), &c, vec![("token".into(), token.clone())]);
                    Box::pin(async move {
                        let Ok(r) = req.send().await else { return false };
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        v["active"] == true
                    }) as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );
    let b4 = base.clone();
    out.push(
        drive("jwks", args.connections, args.seconds, move |client, _| {
            let b = b4.clone();
            async move {
                Box::new(move || {
                    let req = client.get(format!("{b}/jwks"));
                    Box::pin(async move { ok200(req.send().await).await })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );
    out
}
