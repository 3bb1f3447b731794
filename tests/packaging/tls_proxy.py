#!/usr/bin/python3
"""Test-only TLS front for the fake Kubernetes API server (plain HTTP): the in-cluster
configuration always speaks https to KUBERNETES_SERVICE_HOST, like a real API server's
Service. Terminates TLS with the given certificate, forwards bytes to the backend, and
appends each request line and Authorization header it sees to the log file.

    tls_proxy.py CERT KEY BACKEND_PORT PORT_FILE LOG_FILE
"""
import os
import socket
import ssl
import sys
import threading

cert, key, backend_port, port_file, log_file = sys.argv[1:6]
log_lock = threading.Lock()


def log(line):
    with log_lock, open(log_file, "a") as f:
        f.write(line + "\n")


def pump(source, sink, watch):
    pending = b""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if watch:
                pending += data
                *lines, pending = pending.split(b"\r\n")
                pending = pending[-8192:]
                for line in lines:
                    text = line.decode("latin-1")
                    if text.split(" ", 1)[0] in ("GET", "POST", "PATCH", "PUT", "DELETE") or \
                            text.lower().startswith("authorization:"):
                        log(text)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client):
    try:
        client = context.wrap_socket(client, server_side=True)
    except (ssl.SSLError, OSError) as error:
        log(f"TLS handshake failed: {error}")
        client.close()
        return
    backend = socket.create_connection(("127.0.0.1", int(backend_port)))
    threading.Thread(target=pump, args=(backend, client, False), daemon=True).start()
    pump(client, backend, True)


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.set_alpn_protocols(["http/1.1"])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
