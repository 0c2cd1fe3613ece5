#!/bin/sh
# Regenerates the loopback TLS test PKI (run from this folder with OpenSSL 3). Test-only keys:
# never trust them. ca.pem signs server.pem (localhost, 127.0.0.1); other-ca.pem signs nothing.
set -eu
days=36500
for ca in ca other-ca; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$ca.key"
  openssl req -x509 -new -key "$ca.key" -sha256 -days $days -subj "/CN=Tessera guest test $ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$ca.pem"
done
openssl ecparam -name prime256v1 -genkey -noout -out server.ec.key
openssl pkcs8 -topk8 -nocrypt -in server.ec.key -out server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days \
  -extfile server.ext -out server.pem
rm -f server.ec.key server.csr server.ext ca.srl ca.key other-ca.key
# An Ed25519 self-signed server pair (the broker's TLS reload test: a key type that
# attestation's own certificate parser does not take).
openssl genpkey -algorithm ed25519 -out ed25519.key
openssl req -x509 -new -key ed25519.key -days $days -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -out ed25519.pem
