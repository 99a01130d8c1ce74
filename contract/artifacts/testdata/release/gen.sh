#!/bin/sh
# Regenerates the known-answer signature with openssl, independently of the
# Go code: signing-key.pem was made once with
#   openssl ecparam -name prime256v1 -genkey -noout -out signing-key.pem
# The signed message is the context line followed by manifest.json (no
# newline at its end); openssl hashes it with SHA-256 and writes a DER ECDSA
# signature, the form KMS Sign returns for ECDSA_SHA_256.
set -e
cd "$(dirname "$0")"
openssl pkey -in signing-key.pem -pubout -out signing-pub.pem
openssl pkey -pubin -in signing-pub.pem -outform DER | sha256sum | cut -d' ' -f1 > keyid.txt
{ printf 'agentgate release manifest v1\n'; cat manifest.json; } > signed-input.bin
openssl dgst -sha256 -sign signing-key.pem -out manifest.sig signed-input.bin
openssl dgst -sha256 -verify signing-pub.pem -signature manifest.sig signed-input.bin
rm signed-input.bin
