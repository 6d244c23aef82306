#!/bin/sh
# Test certificates for TLS between services (core/net/tls.h), made with the openssl CLI.
#
#   tools/mkcerts.sh [--other-ca] DIR NAME... [--expired NAME]...
#
# In DIR: a test CA (ca.pem, ca.key) and for each NAME a key and a certificate signed by it
# (NAME.key, NAME.pem; subjectAltName DNS:NAME,IP:127.0.0.1; usable as server and client),
# plus NAME.thumbprint holding "sha1 <HEX>" and "sha256 <HEX>" lines (uppercase, no
# separators: the form of Hyper-V's CertificateThumbPrint). --expired NAME makes a
# certificate whose validity ended in 2021. --other-ca signs this run's certificates with a
# second, unrelated CA (other-ca.pem, other-ca.key) instead, for wrong-CA tests.
# Idempotent: existing CAs, keys and certificates are kept. For tests only: keys are not
# encrypted.
set -eu

usage() {
  echo "usage: $0 [--other-ca] DIR NAME... [--expired NAME]..." >&2
  exit 2
}

ca=ca
dir=
names=
expired=
while [ $# -gt 0 ]; do
  case "$1" in
    --other-ca) ca=other-ca ;;
    --expired)
      [ $# -ge 2 ] || usage
      expired="$expired $2"
      shift
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      if [ -z "$dir" ]; then dir=$1; else names="$names $1"; fi
      ;;
  esac
  shift
done
[ -n "$dir" ] || usage
[ -n "$names$expired" ] || usage

mkdir -p "$dir"
cd "$dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/mkcerts.XXXXXX")
trap 'rm -rf "$work"' EXIT

newkey() {
  [ -s "$1" ] || (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

if [ ! -s "$ca.pem" ] || [ ! -s "$ca.key" ]; then
  rm -f "$ca.pem"
  newkey "$ca.key"
  openssl req -x509 -new -key "$ca.key" -sha256 -days 3650 -subj "/CN=vmrepl test $ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$ca.pem" 2>/dev/null
fi

extensions() {
  cat > "$work/ext.cnf" <<EOF
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:$1, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

thumbprints() {
  for alg in sha1 sha256; do
    printf '%s %s\n' "$alg" "$(openssl x509 -in "$1.pem" -noout -fingerprint -"$alg" | sed 's/.*=//; s/://g')"
  done > "$1.thumbprint"
}

for name in $names; do
  if [ ! -s "$name.pem" ] || [ ! -s "$name.key" ]; then
    newkey "$name.key"
    extensions "$name"
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$work/$name.csr" 2>/dev/null
    openssl x509 -req -in "$work/$name.csr" -CA "$ca.pem" -CAkey "$ca.key" \
      -set_serial "0x$(openssl rand -hex 12)" -sha256 -days 825 \
      -extfile "$work/ext.cnf" -extensions leaf -out "$name.pem" 2>/dev/null
  fi
  thumbprints "$name"
done

# OpenSSL 3.0's x509 command cannot set a start date in the past; `openssl ca` can.
for name in $expired; do
  if [ ! -s "$name.pem" ] || [ ! -s "$name.key" ]; then
    newkey "$name.key"
    extensions "$name"
    : > "$work/index.txt"
    cat >> "$work/ext.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = $work/index.txt
new_certs_dir = $work
certificate = $PWD/$ca.pem
private_key = $PWD/$ca.key
default_md = sha256
policy = anything
unique_subject = no
rand_serial = yes
[anything]
commonName = supplied
EOF
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$work/$name.csr" 2>/dev/null
    openssl ca -batch -notext -config "$work/ext.cnf" -extensions leaf \
      -startdate 20200101000000Z -enddate 20210101000000Z \
      -in "$work/$name.csr" -out "$name.pem" 2>/dev/null
  fi
  thumbprints "$name"
done
