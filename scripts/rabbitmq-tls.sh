#!/usr/bin/env bash
# Gives the local RabbitMQ a TLS listener on 127.0.0.1:5671 with a throw-away CA made here,
# for the amqps:// tests. Also makes a second, unrelated CA that a client must refuse.
# Idempotent: does nothing when 5671 already answers with a certificate from our CA.
# Writes the CA to $FIBRPC_TLS_DIR (default /var/lib/fibrpc-tls): ca.pem, wrong-ca.pem.
set -euo pipefail
dir="${FIBRPC_TLS_DIR:-/var/lib/fibrpc-tls}"
conf=/etc/rabbitmq/rabbitmq.conf
mkdir -p "$dir"

tls_up() {
  [ -f "$dir/ca.pem" ] && timeout 5 openssl s_client -connect 127.0.0.1:5671 -CAfile "$dir/ca.pem" \
    -verify_return_error </dev/null >/dev/null 2>&1
}
if tls_up; then
  echo "TLS listener already up on 127.0.0.1:5671"
  exit 0
fi

make_ca() { # name
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=fibrpc test CA $1" \
    -keyout "$dir/$1.key" -out "$dir/$1.pem" 2>/dev/null
}
make_ca ca
make_ca wrong-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 30 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
chmod 644 "$dir"/*.pem "$dir/server.key"

touch "$conf"
sed -i '/^listeners\.ssl\./d; /^ssl_options\./d' "$conf"
cat >> "$conf" <<CONF
listeners.ssl.default = 127.0.0.1:5671
ssl_options.cacertfile = $dir/ca.pem
ssl_options.certfile = $dir/server.pem
ssl_options.keyfile = $dir/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF

# The listener is read at boot: restart the node, waiting for the old one to be gone first
# (a start while it is still stopping fails quietly).
rabbitmqctl stop >/dev/null 2>&1 || true
for _ in $(seq 1 60); do
  rabbitmqctl status >/dev/null 2>&1 || (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || break
  sleep 1
done
for attempt in 1 2 3; do
  rabbitmq-server -detached || true
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 && break
  echo "RabbitMQ did not start (attempt $attempt); trying again" >&2
  sleep 2
done
for _ in $(seq 1 60); do tls_up && break; sleep 1; done
tls_up || { echo "the TLS listener did not come up" >&2; exit 1; }
echo "TLS listener up on 127.0.0.1:5671 (CA: $dir/ca.pem)"
