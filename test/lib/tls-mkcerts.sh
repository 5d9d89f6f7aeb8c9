#!/bin/sh
# tls-mkcerts.sh DIR — make a throw-away PKI for the TLS tests with the openssl command:
#   ca.{crt,key}        EC P-256 CA          other-ca.crt   an unrelated CA
#   server.{crt,key}    RSA 2048 (PKCS#8 key), SANs DNS:api.kvnet.test,
#                       IP:127.0.0.1, IP:::1, IP:198.18.0.2
#   server-ec.{crt,key}    EC P-384, same SANs (ECDHE_ECDSA suites)
#   client-rsa.{crt,key}   RSA, "RSA PRIVATE KEY"   client-rsa.p8   same key, PKCS#8
#   client-ec.{crt,key}    EC P-256, "EC PRIVATE KEY"  client-ec.p8  same key, PKCS#8
#   ca.der              the CA in DER       bundle.crt     other-ca.crt + ca.crt
set -eu
cd "$1"
o() { openssl "$@" 2>/dev/null; }
ca() { # NAME CN
	o req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-out "$1.crt" -days 2 -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
sign() { # NAME CN EXT
	o req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "$3" >"$1.ext"
	o x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
		-out "$1.crt" -extfile "$1.ext"
}
ca ca kvnet-test-ca
ca other-ca kvnet-other-ca
o x509 -in ca.crt -outform DER -out ca.der
cat other-ca.crt ca.crt >bundle.crt
o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key
sign server kvnet-test-server \
	'subjectAltName=DNS:api.kvnet.test,IP:127.0.0.1,IP:::1,IP:198.18.0.2
extendedKeyUsage=serverAuth'
o ecparam -name secp384r1 -genkey -noout -out server-ec.key
sign server-ec kvnet-test-server-ec \
	'subjectAltName=DNS:api.kvnet.test,IP:127.0.0.1,IP:::1,IP:198.18.0.2
extendedKeyUsage=serverAuth'
o genrsa -traditional -out client-rsa.key 2048
o pkcs8 -topk8 -nocrypt -in client-rsa.key -out client-rsa.p8
sign client-rsa client-rsa 'extendedKeyUsage=clientAuth'
o ecparam -name prime256v1 -genkey -noout -out client-ec.key
o pkcs8 -topk8 -nocrypt -in client-ec.key -out client-ec.p8
sign client-ec client-ec 'extendedKeyUsage=clientAuth'
