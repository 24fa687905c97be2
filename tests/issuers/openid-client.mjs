// openid-client (panva), a real OAuth client library, authenticating to
// warden with private_key_jwt for warden's tests.
//
//   node openid-client.mjs keygen   prints {"private": JWK, "public": JWK}
//   node openid-client.mjs token    client_credentials with the key in
//                                   PRIVATE_JWK for CLIENT_ID at ISSUER
//                                   (SCOPE optional); prints the answer
import { webcrypto } from 'node:crypto';
import * as client from 'openid-client';

const { subtle } = webcrypto;

if (process.argv[2] === 'keygen') {
  const pair = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const kid = `oc-${Date.now()}`;
  const priv = { ...(await subtle.exportKey('jwk', pair.privateKey)), kid };
  const pub = { ...(await subtle.exportKey('jwk', pair.publicKey)), kid };
  delete pub.key_ops;
  delete pub.ext;
  process.stdout.write(`${JSON.stringify({ private: priv, public: pub })}\n`);
} else {
  const jwk = JSON.parse(process.env.PRIVATE_JWK);
  const key = await subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const issuer = new URL(process.env.ISSUER);
  const options = issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {};
  const config = await client.discovery(
    issuer,
    process.env.CLIENT_ID,
    undefined,
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    options,
  );
  const params = process.env.SCOPE ? { scope: process.env.SCOPE } : {};
  const tokens = await client.clientCredentialsGrant(config, params);
  process.stdout.write(`${JSON.stringify(tokens)}\n`);
}
