# The spike's source: sends argv[2] bytes to each connection on 127.0.0.1:argv[1] in 1 MiB writes.
import socket, threading, sys
port = int(sys.argv[1]); total = int(sys.argv[2])
chunk = b'\x07' * (1 << 20)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port)); srv.listen(16)
print('listening', flush=True)
def send(c):
    try:
        for _ in range(total >> 20): c.sendall(chunk)
    except OSError: pass
    finally: c.close()
while True:
    c, _ = srv.accept(); threading.Thread(target=send, args=(c,), daemon=True).start()
