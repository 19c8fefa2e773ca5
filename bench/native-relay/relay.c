// A per-request HTTP/1.1 relay in C, run on a Node process's own libuv loop
// (bench/native-relay.ts): what Warren's edge would do per request with a
// native data plane. Each kept client connection is pinned to one upstream
// connection; for each request it reads the head, drops the hop-by-hop
// headers, checks there is one Host, adds a request id and X-Forwarded-For,
// writes it upstream, and copies the answer back while framing it
// (Content-Length or chunked), so it knows where the answer ends and never
// passes a byte beyond it. Requests it does not carry (a body, a malformed
// or oversized head) close the connection: a benchmark's prototype, not the
// product, which would hand them back to JavaScript.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define IN_MAX 65536
#define OUT_MAX (IN_MAX + 256)
#define READ_MAX 65536

enum body { NONE, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, TRAILERS };

typedef struct conn {
  int cfd, ufd;
  uv_poll_t cpoll, upoll;
  int cevents, uevents, open_polls, closed;
  /* the client's bytes not yet taken as a request */
  char in[IN_MAX];
  size_t in_len;
  /* a request head on its way upstream */
  char out[OUT_MAX];
  size_t out_len, out_off;
  /* answer bytes the client could not take yet */
  char *pending;
  size_t pending_len, pending_off;
  /* the answer being framed */
  int busy, in_head, last_crlf, ended, head_request;
  char head[16384];
  size_t head_bytes;
  long long content_left;
  int chunked;
  enum body body;
  unsigned long long chunk_left;
  int line_len;
} conn;

static uv_loop_t *loop;
static unsigned long long next_request = 1;

static void on_client(uv_poll_t *h, int status, int events);
static void on_upstream(uv_poll_t *h, int status, int events);

static void poll_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->open_polls) return;
  close(c->cfd);
  close(c->ufd);
  free(c->pending);
  free(c);
}

static void conn_close(conn *c) {
  if (c->closed) return;
  c->closed = 1;
  uv_close((uv_handle_t *)&c->cpoll, poll_closed);
  uv_close((uv_handle_t *)&c->upoll, poll_closed);
}

static void watch(uv_poll_t *p, int *current, int events, uv_poll_cb cb) {
  if (events == *current) return;
  *current = events;
  if (events)
    uv_poll_start(p, events, cb);
  else
    uv_poll_stop(p);
}
static void watch_client(conn *c, int e) { watch(&c->cpoll, &c->cevents, e, on_client); }
static void watch_upstream(conn *c, int e) { watch(&c->upoll, &c->uevents, e, on_upstream); }

/* Writes what is left of `buf` from `*off`: 1 once all of it is out, 0 for later, -1 on error. */
static int write_more(int fd, const char *buf, size_t len, size_t *off) {
  ssize_t n = write(fd, buf + *off, len - *off);
  if (n < 0 && errno != EAGAIN) return -1;
  if (n > 0) *off += n;
  return *off == len;
}

static int named(const char *p, size_t n, const char *name) {
  return n == strlen(name) && !strncasecmp(p, name, n);
}

/* Takes the next buffered request, if its head is whole: 0, or -1 to close. */
static int next_request_head(conn *c) {
  char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) return c->in_len == IN_MAX ? -1 : 0;
  size_t head_len = end - c->in + 4;
  char *line_end = memmem(c->in, head_len, "\r\n", 2);
  size_t o = line_end - c->in + 2;
  memcpy(c->out, c->in, o);
  int hosts = 0;
  for (char *p = line_end + 2; p < end + 2;) {
    char *le = memmem(p, end + 2 - p, "\r\n", 2);
    char *colon = memchr(p, ':', le - p);
    if (!colon || colon == p) return -1;
    size_t n = colon - p;
    if (named(p, n, "content-length") || named(p, n, "transfer-encoding") ||
        named(p, n, "expect") || named(p, n, "upgrade"))
      return -1;
    if (named(p, n, "host")) hosts++;
    int hop = named(p, n, "connection") || named(p, n, "keep-alive") || named(p, n, "te") ||
              named(p, n, "trailer") || named(p, n, "proxy-connection") ||
              named(p, n, "x-request-id") || named(p, n, "x-forwarded-for");
    if (!hop) {
      memcpy(c->out + o, p, le - p + 2);
      o += le - p + 2;
    }
    p = le + 2;
  }
  if (hosts != 1) return -1;
  o += snprintf(c->out + o, OUT_MAX - o,
                "x-request-id: native-%llu\r\nx-forwarded-for: 127.0.0.1\r\n\r\n",
                next_request++);
  memmove(c->in, c->in + head_len, c->in_len - head_len);
  c->in_len -= head_len;
  c->out_len = o;
  c->out_off = 0;
  c->busy = 1;
  c->in_head = 1;
  c->head_bytes = 0;
  c->last_crlf = 0;
  c->ended = 0;
  c->content_left = -1;
  c->chunked = 0;
  c->body = NONE;
  c->head_request = !strncmp(c->out, "HEAD ", 5);
  int sent = write_more(c->ufd, c->out, c->out_len, &c->out_off);
  if (sent < 0) return -1;
  watch_upstream(c, sent ? UV_READABLE : UV_READABLE | UV_WRITABLE);
  return 0;
}

/*
 * Requests are answered one at a time; the client stays watched meanwhile
 * (a pipelined request is buffered), unless its buffer is full.
 */
static void serve_next(conn *c) {
  if (c->closed) return;
  if (!c->busy && next_request_head(c) < 0) return conn_close(c);
  if (!c->pending_len) watch_client(c, c->in_len < IN_MAX ? UV_READABLE : 0);
}

/* The answer's framing (RFC 9112 §6.3), once a head is whole. */
static int read_framing(conn *c, const char *head, size_t len) {
  if (len < 12 || strncmp(head, "HTTP/1.1 ", 9)) return -1;
  int status = atoi(head + 9);
  if (status == 101) return -1;
  if (status < 200) {
    // An interim answer (103 Early Hints): the final head follows.
    c->in_head = 1;
    c->head_bytes = 0;
    c->last_crlf = 0;
    return 0;
  }
  if (c->head_request || status == 204 || status == 304) {
    c->ended = 1;
    return 0;
  }
  const char *end = head + len;
  for (const char *p = memchr(head, '\n', len) + 1; p < end;) {
    const char *le = memchr(p, '\n', end - p);
    if (!le || le == p + 1) break;
    const char *colon = memchr(p, ':', le - p);
    if (colon) {
      size_t n = colon - p;
      const char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (named(p, n, "content-length")) {
        char *stop;
        long long cl = strtoll(v, &stop, 10);
        if (stop == v || cl < 0 || (c->content_left >= 0 && c->content_left != cl)) return -1;
        c->content_left = cl;
      } else if (named(p, n, "transfer-encoding")) {
        if (strncasecmp(v, "chunked", 7)) return -1;
        c->chunked = 1;
      }
    }
    p = le + 1;
  }
  if (c->chunked && c->content_left >= 0) return -1;
  if (c->chunked) {
    c->body = CHUNK_SIZE;
    c->chunk_left = 0;
    c->line_len = 0;
  } else if (c->content_left > 0) {
    c->body = LENGTH;
  } else if (c->content_left == 0) {
    c->ended = 1;
  } else {
    return -1; /* close-delimited: not carried */
  }
  return 0;
}

/*
 * Frames `len` answer bytes: how many belong to this answer (the rest would
 * be a protocol error), with c->ended set at its last byte; -1 when broken.
 */
static long frame(conn *c, const char *d, size_t len) {
  size_t i = 0;
  while (i < len && !c->ended) {
    if (c->in_head) {
      // The head ends at its first empty line.
      char ch = d[i++];
      if (c->head_bytes == sizeof c->head) return -1;
      c->head[c->head_bytes++] = ch;
      if (ch == '\n') {
        if (!c->last_crlf) {
          c->last_crlf = 1;
        } else {
          c->in_head = 0;
          if (read_framing(c, c->head, c->head_bytes) < 0) return -1;
        }
      } else if (ch != '\r') {
        c->last_crlf = 0;
      }
      continue;
    }
    switch (c->body) {
    case LENGTH: {
      size_t take = len - i < (size_t)c->content_left ? len - i : (size_t)c->content_left;
      i += take;
      c->content_left -= take;
      if (!c->content_left) c->ended = 1;
      break;
    }
    case CHUNK_SIZE: {
      char ch = d[i++];
      if (ch == '\n') {
        c->body = c->chunk_left ? CHUNK_DATA : TRAILERS;
        c->line_len = 0;
      } else if (c->line_len >= 0 && ch != '\r' && ch != ';') {
        int v = ch >= '0' && ch <= '9' ? ch - '0'
                : (ch | 32) >= 'a' && (ch | 32) <= 'f' ? (ch | 32) - 'a' + 10
                                                       : -1;
        if (v < 0 || c->chunk_left >> 60) return -1;
        c->chunk_left = c->chunk_left * 16 + v;
        c->line_len++;
      } else if (ch == ';') {
        c->line_len = -1; /* an extension: ignored to the line's end */
      }
      break;
    }
    case CHUNK_DATA: {
      size_t take = len - i < c->chunk_left ? len - i : c->chunk_left;
      i += take;
      c->chunk_left -= take;
      if (!c->chunk_left) c->body = CHUNK_DATA_END;
      break;
    }
    case CHUNK_DATA_END:
      if (d[i++] == '\n') {
        c->body = CHUNK_SIZE;
        c->line_len = 0;
      }
      break;
    case TRAILERS: {
      char ch = d[i++];
      if (ch == '\n') {
        if (c->line_len == 0) c->ended = 1;
        c->line_len = 0;
      } else if (ch != '\r') {
        c->line_len++;
      }
      break;
    }
    default:
      return -1;
    }
  }
  return i;
}

static void on_upstream(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (status < 0) return conn_close(c);
  if (events & UV_WRITABLE) {
    int sent = write_more(c->ufd, c->out, c->out_len, &c->out_off);
    if (sent < 0) return conn_close(c);
    if (sent) watch_upstream(c, UV_READABLE);
  }
  if (!(events & UV_READABLE)) return;
  static char buf[READ_MAX];
  ssize_t n = read(c->ufd, buf, sizeof buf);
  if (n < 0 && errno == EAGAIN) return;
  // An upstream that closes, or sends with no request outstanding, ends the connection.
  if (n <= 0 || !c->busy) return conn_close(c);
  long used = frame(c, buf, n);
  if (used != n) return conn_close(c);
  ssize_t w = write(c->cfd, buf, n);
  if (w < 0) {
    if (errno != EAGAIN) return conn_close(c);
    w = 0;
  }
  if (c->ended) c->busy = 0;
  if (w < n) {
    // The client is full: hold the rest, and read no more until it drains.
    c->pending = realloc(c->pending, n - w);
    memcpy(c->pending, buf + w, n - w);
    c->pending_len = n - w;
    c->pending_off = 0;
    watch_upstream(c, 0);
    watch_client(c, UV_WRITABLE);
    return;
  }
  if (c->ended) serve_next(c);
}

static void on_client(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (status < 0) return conn_close(c);
  if (events & UV_WRITABLE) {
    int sent = write_more(c->cfd, c->pending, c->pending_len, &c->pending_off);
    if (sent < 0) return conn_close(c);
    if (!sent) return;
    c->pending_len = c->pending_off = 0;
    if (c->busy) watch_upstream(c, UV_READABLE);
    serve_next(c);
    return;
  }
  if (!(events & UV_READABLE)) return;
  ssize_t n = read(c->cfd, c->in + c->in_len, IN_MAX - c->in_len);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) return conn_close(c);
  c->in_len += n;
  serve_next(c);
}

/* adopt(fd, host, port): takes a client connection (a dup of fd) and dials its upstream. */
static napi_value adopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, port;
  char host[64];
  size_t host_len;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len);
  napi_get_value_int32(env, argv[2], &port);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    napi_throw_error(env, NULL, "not an IPv4 address");
    return NULL;
  }
  conn *c = calloc(1, sizeof *c);
  c->cfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  c->ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Dialled once per client connection, before it is served: a blocking connect is enough here.
  if (c->cfd < 0 || c->ufd < 0 || connect(c->ufd, (struct sockaddr *)&to, sizeof to) < 0) {
    if (c->cfd >= 0) close(c->cfd);
    if (c->ufd >= 0) close(c->ufd);
    free(c);
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  int one = 1;
  setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(c->cfd, F_SETFL, fcntl(c->cfd, F_GETFL) | O_NONBLOCK);
  fcntl(c->ufd, F_SETFL, fcntl(c->ufd, F_GETFL) | O_NONBLOCK);
  uv_poll_init(loop, &c->cpoll, c->cfd);
  uv_poll_init(loop, &c->upoll, c->ufd);
  c->cpoll.data = c->upoll.data = c;
  c->open_polls = 2;
  watch_client(c, UV_READABLE);
  watch_upstream(c, UV_READABLE);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_get_uv_event_loop(env, &loop);
  napi_value fn;
  napi_create_function(env, "adopt", NAPI_AUTO_LENGTH, adopt, NULL, &fn);
  napi_set_named_property(env, exports, "adopt", fn);
  return exports;
}
