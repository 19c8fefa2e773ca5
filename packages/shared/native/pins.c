// Pinned connections of the relay (src/proxy/relay/native-pins.ts): a kept
// plain-HTTP client connection whose requests all go the same way, carried
// request by request in C on the process's own libuv loop, with the
// upstream connection its first request was answered on.
//
// Why: the relay in JavaScript costs ~100 µs of CPU per request, nginx ~45;
// this loop costs about what nginx does (`npm run bench -- api`). JavaScript
// keeps every decision: it pins a connection only after resolving a request
// on it, with the headers that request's route depends on; each later
// request here must repeat those headers byte for byte, be a GET or HEAD
// without a body, and parse strictly. Anything else — and every release
// (the route changed), every upstream that closes before answering — hands
// the client connection back to JavaScript at a request boundary, with the
// bytes read and not yet answered, to be resolved there as a new request.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* A head this long without its end goes back to JavaScript (Node's own limit is 16 KiB). */
#define IN_MAX 16384
#define OUT_MAX (IN_MAX + 4096)
#define READ_MAX 65536
/* As the relay: a connection waiting this long for its next request is closed. */
#define IDLE_MS 65000
#define MAX_NAMES 16
#define LINE_MAX_KEPT 256

enum body { NONE, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, TRAILERS, UNTIL_EOF };

typedef struct names {
  int n;
  char *name[MAX_NAMES];
  size_t len[MAX_NAMES];
} names;

typedef struct conn {
  struct conn *prev, *next;
  uint32_t id;
  int cfd, ufd;
  uv_poll_t cpoll, upoll;
  uv_timer_t idle;
  int cevents, uevents, open_handles, closing;
  /* what every request must repeat, what it loses, what it gains */
  names same, drop;
  char *key;
  size_t key_len;
  char *add;
  size_t add_len;
  /* the client's bytes: the head being answered (head_len of them), then what follows */
  char in[IN_MAX];
  size_t in_len, head_len;
  /* the rest of a request head the upstream could not take at once */
  char *out;
  size_t out_len, out_off;
  /* answer bytes the client could not take yet */
  char *pending;
  size_t pending_len, pending_off;
  /* the request being answered */
  int busy, answering, client_ended, release, upstream_close, head_request, status;
  uint64_t started;
  /* the answer's framing */
  int in_head, last_cr, ended;
  char line[LINE_MAX_KEPT];
  size_t line_len, line_total;
  long long content_left;
  int chunked;
  enum body body;
  unsigned long long chunk_left;
  int chunk_line;
} conn;

static napi_env g_env;
static uv_loop_t *loop;
static napi_ref on_end_ref, on_full_ref, entries_ref;
static napi_async_context async_ctx;
static uint32_t *entries;
static size_t entries_cap, entries_len;
static conn *conns;
static size_t live;
/* Inside a call from JavaScript: an exception of a callback propagates; outside, it is fatal. */
static int in_js;

static void on_client(uv_poll_t *h, int status, int events);
static void on_upstream(uv_poll_t *h, int status, int events);
static void serve_next(conn *c);

/* --- calls into JavaScript ------------------------------------------------ */

static void call_js(napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = g_env;
  napi_value fn, global, result;
  napi_get_reference_value(env, ref, &fn);
  napi_get_global(env, &global);
  if (napi_make_callback(env, async_ctx, global, fn, argc, argv, &result) == napi_pending_exception &&
      !in_js) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

/* Answers recorded (pin id, status, µs), taken by JavaScript's drain; full: drained now. */
static void record(conn *c) {
  if (!entries) return;
  if (entries_len == entries_cap) {
    napi_handle_scope scope;
    napi_open_handle_scope(g_env, &scope);
    call_js(on_full_ref, 0, NULL);
    napi_close_handle_scope(g_env, scope);
    if (entries_len == entries_cap) return;
  }
  uint32_t *e = entries + entries_len * 3;
  e[0] = c->id;
  e[1] = c->status;
  uint64_t us = (uv_hrtime() - c->started) / 1000;
  e[2] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  entries_len++;
}

/* --- a pin's end ---------------------------------------------------------- */

static void free_names(names *n) {
  for (int i = 0; i < n->n; i++) free(n->name[i]);
  n->n = 0;
}

/* A pin's memory and the descriptors it still holds (the client's is -1 once given back). */
static void conn_free(conn *c) {
  if (c->cfd >= 0) close(c->cfd);
  if (c->ufd >= 0) close(c->ufd);
  free_names(&c->same);
  free_names(&c->drop);
  free(c->key);
  free(c->add);
  free(c->out);
  free(c->pending);
  free(c);
}

static void handle_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (!--c->open_handles) conn_free(c);
}

/*
 * Ends the pin: its handles close and JavaScript is told. `back`: the
 * client connection goes to JavaScript with the bytes not yet answered;
 * otherwise it is closed. The upstream connection is closed either way.
 */
static void end(conn *c, int back) {
  if (c->closing) return;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next) c->next->prev = c->prev;
  live--;
  uv_close((uv_handle_t *)&c->cpoll, handle_closed);
  uv_close((uv_handle_t *)&c->upoll, handle_closed);
  uv_close((uv_handle_t *)&c->idle, handle_closed);
  int fd = -1;
  if (back) {
    fd = c->cfd;
    c->cfd = -1;
  }
  napi_env env = g_env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  napi_create_uint32(env, c->id, &argv[0]);
  napi_create_int32(env, fd, &argv[1]);
  void *data;
  size_t n = back ? c->in_len : 0;
  napi_create_buffer_copy(env, n, c->in, &data, &argv[2]);
  call_js(on_end_ref, 3, argv);
  napi_close_handle_scope(env, scope);
}

static void close_both(conn *c) { end(c, 0); }
static void hand_back(conn *c) { end(c, 1); }

/* --- watching --------------------------------------------------------------- */

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

static void on_idle(uv_timer_t *t) {
  conn *c = t->data;
  if (!c->busy) close_both(c);
}

/* Sends what is left of `buf` from `*off`: 1 once all of it is out, 0 for later, -1 on error. */
static int write_more(int fd, const char *buf, size_t len, size_t *off) {
  ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN) return -1;
  if (n > 0) *off += n;
  return *off == len;
}

/* --- requests --------------------------------------------------------------- */

static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int named(const char *p, size_t n, const char *name) {
  return n == strlen(name) && !strncasecmp(p, name, n);
}

static int among(const names *ns, const char *p, size_t n) {
  for (int i = 0; i < ns->n; i++)
    if (ns->len[i] == n && !strncasecmp(p, ns->name[i], n)) return 1;
  return 0;
}

static int hop_by_hop(const char *p, size_t n) {
  return named(p, n, "connection") || named(p, n, "keep-alive") || named(p, n, "te") ||
         named(p, n, "trailer") || named(p, n, "proxy-connection") ||
         named(p, n, "proxy-authorization") || named(p, n, "proxy-authenticate");
}

static int valid_request_id(const char *v, size_t n) {
  if (n < 1 || n > 128) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = v[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == ':' || ch == '-'))
      return 0;
  }
  return 1;
}

/* A random (version 4) UUID, as Node's randomUUID, from a pool refilled by getrandom. */
static void new_request_id(char out[37]) {
  static unsigned char pool[4096];
  static size_t used = sizeof pool;
  if (used + 16 > sizeof pool) {
    if (getrandom(pool, sizeof pool, 0) != sizeof pool) {
      for (size_t i = 0; i < sizeof pool; i++) pool[i] = (unsigned char)rand();
    }
    used = 0;
  }
  unsigned char *b = pool + used;
  used += 16;
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = 0;
}

/*
 * One head in `h` (ending with its blank line): its routing key (the values
 * of the `same` headers, in order) into key, and — with `out` — the head the
 * upstream gets. 0, or -1 for a head this does not carry.
 */
static int read_head(conn *c, const char *h, size_t len, char *key, size_t *key_len, char *out,
                     size_t *out_len) {
  const char *end = h + len - 2; /* the blank line's CRLF */
  const char *le = memmem(h, len, "\r\n", 2);
  /* Only GET and HEAD in origin form over HTTP/1.1: what can be sent again if cut short. */
  size_t line = le - h;
  const char *target;
  if (line > 4 && !memcmp(h, "GET ", 4))
    target = h + 4;
  else if (line > 5 && !memcmp(h, "HEAD ", 5))
    target = h + 5;
  else
    return -1;
  if (line < 9 || memcmp(le - 9, " HTTP/1.1", 9) || *target != '/') return -1;
  for (const char *p = target; p < le - 9; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return -1;
  size_t o = 0, k = 0;
  if (out) {
    memcpy(out, h, line + 2);
    o = line + 2;
  }
  const char *rid = NULL;
  size_t rid_len = 0;
  int rids = 0;
  for (const char *p = le + 2; p < end;) {
    const char *e = memmem(p, end + 2 - p, "\r\n", 2);
    const char *colon = memchr(p, ':', e - p);
    if (!colon || colon == p) return -1;
    size_t n = colon - p;
    for (size_t i = 0; i < n; i++)
      if (!is_tchar(p[i])) return -1;
    const char *v = colon + 1, *ve = e;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    for (const char *q = v; q < ve; q++) {
      unsigned char ch = *q;
      if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return -1;
    }
    size_t vn = ve - v;
    if (named(p, n, "content-length") || named(p, n, "transfer-encoding") ||
        named(p, n, "expect") || named(p, n, "upgrade"))
      return -1;
    /* A client that asks for anything but the default (close, an upgrade) is JavaScript's. */
    if (named(p, n, "connection") && !(vn == 10 && !strncasecmp(v, "keep-alive", 10))) return -1;
    if (among(&c->same, p, n)) {
      if (k + n + vn + 2 > IN_MAX) return -1;
      for (size_t i = 0; i < n; i++) key[k++] = p[i] | 32;
      key[k++] = ':';
      memcpy(key + k, v, vn);
      k += vn;
      key[k++] = '\n';
    }
    if (named(p, n, "x-request-id")) {
      rid = v;
      rid_len = vn;
      rids++;
    } else if (out && !hop_by_hop(p, n) && !among(&c->drop, p, n)) {
      /* As Node's HTTP server gives them to the relay: names in lower case, values trimmed. */
      for (size_t i = 0; i < n; i++) out[o++] = (p[i] >= 'A' && p[i] <= 'Z') ? p[i] | 32 : p[i];
      out[o++] = ':';
      out[o++] = ' ';
      memcpy(out + o, v, vn);
      o += vn;
      out[o++] = '\r';
      out[o++] = '\n';
    }
    p = e + 2;
  }
  *key_len = k;
  if (!out) return 0;
  /* The added headers, a request id of up to 128 bytes, and the blank line. */
  if (o + c->add_len + 160 > OUT_MAX) return -1;
  memcpy(out + o, c->add, c->add_len);
  o += c->add_len;
  memcpy(out + o, "x-request-id: ", 14);
  o += 14;
  if (rids == 1 && valid_request_id(rid, rid_len)) {
    memcpy(out + o, rid, rid_len);
    o += rid_len;
  } else {
    char id[37];
    new_request_id(id);
    memcpy(out + o, id, 36);
    o += 36;
  }
  memcpy(out + o, "\r\n\r\n", 4);
  *out_len = o + 4;
  return 0;
}

static int bare_lf(const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] == '\n' && (!i || b[i - 1] != '\r')) return 1;
  return 0;
}

/* The next buffered request, if its head is whole: sent upstream, or the connection handed back. */
static void next_request(conn *c) {
  char *endp = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!endp) {
    /* A head past the limit, or a bare LF: JavaScript's parser answers it. */
    if (c->in_len == IN_MAX || bare_lf(c->in, c->in_len)) hand_back(c);
    return;
  }
  size_t head_len = endp - c->in + 4;
  static char key[IN_MAX], out[OUT_MAX];
  size_t key_len, out_len;
  if (read_head(c, c->in, head_len, key, &key_len, out, &out_len) < 0 || key_len != c->key_len ||
      memcmp(key, c->key, key_len))
    return hand_back(c);
  uv_timer_stop(&c->idle);
  c->head_len = head_len;
  c->busy = 1;
  c->answering = 0;
  c->started = uv_hrtime();
  c->status = 0;
  c->in_head = 1;
  c->line_len = c->line_total = 0;
  c->last_cr = 0;
  c->ended = 0;
  c->content_left = -1;
  c->chunked = 0;
  c->body = NONE;
  c->head_request = c->in[0] == 'H';
  c->upstream_close = 0;
  size_t off = 0;
  int sent = write_more(c->ufd, out, out_len, &off);
  if (sent < 0) {
    /* The upstream went away between requests: JavaScript takes this one on a new connection. */
    return hand_back(c);
  }
  if (!sent) {
    c->out = malloc(out_len - off);
    memcpy(c->out, out + off, out_len - off);
    c->out_len = out_len - off;
    c->out_off = 0;
    watch_upstream(c, UV_READABLE | UV_WRITABLE);
  }
}

/* After an answer, or as the pin begins: the next request, or waiting for one. */
static void serve_next(conn *c) {
  if (c->closing) return;
  if (!c->busy) {
    if (c->release) return hand_back(c);
    if (c->in_len) next_request(c);
    if (c->closing) return;
    if (!c->busy) uv_timer_start(&c->idle, on_idle, IDLE_MS, 0);
  }
  if (!c->pending_len) watch_client(c, c->in_len < IN_MAX && !c->client_ended ? UV_READABLE : 0);
}

/* --- answers ---------------------------------------------------------------- */

/* A line of the answer's head (CRLF stripped, kept up to LINE_MAX_KEPT): its framing. */
static int head_line(conn *c, const char *l, size_t n) {
  if (!c->status) {
    if (n < 12 || (memcmp(l, "HTTP/1.1 ", 9) && memcmp(l, "HTTP/1.0 ", 9))) return -1;
    int status = atoi(l + 9);
    if (status < 100 || status > 999) return -1;
    c->status = status;
    if (l[7] == '0') c->upstream_close = 1;
    return 0;
  }
  const char *colon = memchr(l, ':', n);
  if (!colon) return 0;
  size_t nn = colon - l;
  const char *v = colon + 1, *ve = l + n;
  while (v < ve && (*v == ' ' || *v == '\t')) v++;
  while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
  size_t vn = ve - v;
  if (named(l, nn, "content-length")) {
    char *stop;
    long long cl = strtoll(v, &stop, 10);
    if (stop != ve || cl < 0 || (c->content_left >= 0 && c->content_left != cl)) return -1;
    c->content_left = cl;
  } else if (named(l, nn, "transfer-encoding")) {
    if (vn != 7 || strncasecmp(v, "chunked", 7)) return -1;
    c->chunked = 1;
  } else if (named(l, nn, "connection")) {
    for (const char *p = v; p + 5 <= ve; p++)
      if (!strncasecmp(p, "close", 5)) c->upstream_close = 1;
  }
  return 0;
}

/* The head is whole: where its body ends (RFC 9112 §6.3). */
static int head_done(conn *c) {
  int status = c->status;
  if (status == 101) return -1;
  if (status < 200) {
    /* An interim answer (103 Early Hints): the final head follows. */
    c->status = 0;
    c->in_head = 1;
    c->content_left = -1;
    c->chunked = 0;
    return 0;
  }
  if (c->head_request || status == 204 || status == 304) {
    c->ended = 1;
    return 0;
  }
  if (c->chunked && c->content_left >= 0) return -1;
  if (c->chunked) {
    c->body = CHUNK_SIZE;
    c->chunk_left = 0;
    c->chunk_line = 0;
  } else if (c->content_left > 0) {
    c->body = LENGTH;
  } else if (c->content_left == 0) {
    c->ended = 1;
  } else {
    c->body = UNTIL_EOF;
    c->upstream_close = 1;
  }
  return 0;
}

/* Frames `len` answer bytes: how many belong to this answer, c->ended at its last; -1 broken. */
static long frame(conn *c, const char *d, size_t len) {
  size_t i = 0;
  while (i < len && !c->ended) {
    if (c->in_head) {
      char ch = d[i++];
      if (ch != '\n') {
        if (c->line_len < LINE_MAX_KEPT) c->line[c->line_len++] = ch;
        c->line_total++;
        c->last_cr = ch == '\r';
        if (c->line_len == LINE_MAX_KEPT && !c->status) return -1;
        continue;
      }
      if (!c->last_cr) return -1;
      size_t n = c->line_total - 1; /* without its CR */
      size_t kept = n < c->line_len ? n : c->line_len;
      c->line_len = c->line_total = 0;
      c->last_cr = 0;
      if (!n) {
        c->in_head = 0;
        if (head_done(c) < 0) return -1;
      } else if (head_line(c, c->line, kept) < 0) {
        return -1;
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
    case UNTIL_EOF:
      i = len;
      break;
    case CHUNK_SIZE: {
      char ch = d[i++];
      if (ch == '\n') {
        c->body = c->chunk_left ? CHUNK_DATA : TRAILERS;
        c->chunk_line = 0;
      } else if (c->chunk_line >= 0 && ch != '\r' && ch != ';' && ch != ' ' && ch != '\t') {
        int v = ch >= '0' && ch <= '9'                 ? ch - '0'
                : (ch | 32) >= 'a' && (ch | 32) <= 'f' ? (ch | 32) - 'a' + 10
                                                       : -1;
        if (v < 0 || c->chunk_left >> 58) return -1;
        c->chunk_left = c->chunk_left * 16 + v;
        c->chunk_line++;
      } else if (ch == ';') {
        c->chunk_line = -1; /* an extension: ignored to the line's end */
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
        c->chunk_line = 0;
      }
      break;
    case TRAILERS: {
      char ch = d[i++];
      if (ch == '\n') {
        if (c->chunk_line == 0) c->ended = 1;
        c->chunk_line = 0;
      } else if (ch != '\r') {
        c->chunk_line++;
      }
      break;
    }
    default:
      return -1;
    }
  }
  return i;
}

/* The answer is whole: recorded, and the next request taken (or the pin ended). */
static void answered(conn *c) {
  record(c);
  c->busy = 0;
  c->answering = 0;
  memmove(c->in, c->in + c->head_len, c->in_len - c->head_len);
  c->in_len -= c->head_len;
  c->head_len = 0;
  /* An upstream that closes after its answer (which said so) ends the client's too, as in the relay. */
  if (c->client_ended || c->upstream_close) return close_both(c);
  serve_next(c);
}

static void on_upstream(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (status < 0) return (c->answering || c->client_ended) ? close_both(c) : hand_back(c);
  if (events & UV_WRITABLE) {
    int sent = write_more(c->ufd, c->out, c->out_len, &c->out_off);
    if (sent < 0) return hand_back(c);
    if (sent) {
      free(c->out);
      c->out = NULL;
      watch_upstream(c, UV_READABLE);
    }
  }
  if (!(events & (UV_READABLE | UV_DISCONNECT))) return;
  static char buf[READ_MAX];
  ssize_t n = read(c->ufd, buf, sizeof buf);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) {
    /* A close-delimited answer ends here, and the client learns it by its close. */
    if (c->busy && c->body == UNTIL_EOF && !c->in_head) {
      record(c);
      return close_both(c);
    }
    /* Mid-answer: cut. Before the answer (or between requests): JavaScript carries on. */
    return c->answering ? close_both(c) : hand_back(c);
  }
  /* Bytes with no request outstanding break the protocol: the client goes back, unharmed. */
  if (!c->busy) return hand_back(c);
  long used = frame(c, buf, n);
  if (used != n) return c->answering ? close_both(c) : hand_back(c);
  c->answering = 1;
  ssize_t w = send(c->cfd, buf, n, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) return close_both(c);
    w = 0;
  }
  if (w < n) {
    /* The client is full: hold the rest, and read no more until it drains. */
    c->pending = realloc(c->pending, n - w);
    memcpy(c->pending, buf + w, n - w);
    c->pending_len = n - w;
    c->pending_off = 0;
    watch_upstream(c, 0);
    watch_client(c, UV_WRITABLE);
    return;
  }
  if (c->ended) answered(c);
}

static void on_client(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (status < 0) return close_both(c);
  if (events & UV_WRITABLE) {
    int sent = write_more(c->cfd, c->pending, c->pending_len, &c->pending_off);
    if (sent < 0) return close_both(c);
    if (!sent) return;
    c->pending_len = c->pending_off = 0;
    if (c->ended) return answered(c);
    watch_upstream(c, UV_READABLE);
    watch_client(c, c->in_len < IN_MAX && !c->client_ended ? UV_READABLE : 0);
    return;
  }
  if (!(events & (UV_READABLE | UV_DISCONNECT))) return;
  ssize_t n = read(c->cfd, c->in + c->in_len, IN_MAX - c->in_len);
  if (n < 0 && errno == EAGAIN) return;
  if (n < 0) return close_both(c);
  if (n == 0) {
    /* The client is done sending: its request in flight is still answered. */
    if (!c->busy) return close_both(c);
    c->client_ended = 1;
    watch_client(c, 0);
    return;
  }
  c->in_len += n;
  serve_next(c);
}

/* --- from JavaScript ------------------------------------------------------- */

static int read_names(napi_env env, napi_value arr, names *out) {
  uint32_t n;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n > MAX_NAMES) return -1;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    size_t len;
    napi_get_element(env, arr, i, &v);
    if (napi_get_value_string_latin1(env, v, NULL, 0, &len) != napi_ok) return -1;
    out->name[out->n] = malloc(len + 1);
    napi_get_value_string_latin1(env, v, out->name[out->n], len + 1, &len);
    out->len[out->n++] = len;
  }
  return 0;
}

/* init(entries: Uint32Array, onEnd(id, fd, bytes), onFull()) */
static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  g_env = env;
  napi_get_uv_event_loop(env, &loop);
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL);
  if (type != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "entries: a Uint32Array");
    return NULL;
  }
  entries = data;
  entries_cap = length / 3;
  entries_len = 0;
  napi_create_reference(env, argv[0], 1, &entries_ref);
  napi_create_reference(env, argv[1], 1, &on_end_ref);
  napi_create_reference(env, argv[2], 1, &on_full_ref);
  napi_value name;
  napi_create_string_utf8(env, "warren:native-pins", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &async_ctx);
  return NULL;
}

/*
 * pin(id, clientFd, upstreamFd, head: Buffer, same: string[], drop: string[], add: string)
 * → whether the connection is pinned. `head`: the request just answered on
 * it, whose `same` headers every later request must repeat. On true, the
 * pin holds its own descriptors: JavaScript closes its own.
 */
static napi_value pin(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_boolean(env, false, &result);
  if (!loop || argc < 7) return result;
  uint32_t id;
  int32_t cfd, ufd;
  void *head;
  size_t head_len;
  napi_get_value_uint32(env, argv[0], &id);
  napi_get_value_int32(env, argv[1], &cfd);
  napi_get_value_int32(env, argv[2], &ufd);
  napi_get_buffer_info(env, argv[3], &head, &head_len);
  conn *c = calloc(1, sizeof *c);
  c->id = id;
  c->cfd = c->ufd = -1;
  size_t add_len;
  static char key[IN_MAX];
  if (read_names(env, argv[4], &c->same) < 0 || read_names(env, argv[5], &c->drop) < 0 ||
      napi_get_value_string_latin1(env, argv[6], NULL, 0, &add_len) != napi_ok ||
      add_len > 4096 || head_len < 4 || head_len > IN_MAX ||
      memcmp((char *)head + head_len - 4, "\r\n\r\n", 4) ||
      read_head(c, head, head_len, key, &c->key_len, NULL, NULL) < 0)
    goto refused;
  c->add = malloc(add_len + 1);
  napi_get_value_string_latin1(env, argv[6], c->add, add_len + 1, &c->add_len);
  c->key = malloc(c->key_len + 1);
  memcpy(c->key, key, c->key_len);
  c->cfd = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
  c->ufd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
  if (c->cfd < 0 || c->ufd < 0) goto refused;
  fcntl(c->cfd, F_SETFL, fcntl(c->cfd, F_GETFL) | O_NONBLOCK);
  fcntl(c->ufd, F_SETFL, fcntl(c->ufd, F_GETFL) | O_NONBLOCK);
  if (uv_poll_init(loop, &c->cpoll, c->cfd)) goto refused;
  c->cpoll.data = c;
  if (uv_poll_init(loop, &c->upoll, c->ufd)) {
    /* The loop holds the first handle now: freed once it is closed. */
    c->open_handles = 1;
    uv_close((uv_handle_t *)&c->cpoll, handle_closed);
    return result;
  }
  uv_timer_init(loop, &c->idle);
  c->upoll.data = c->idle.data = c;
  c->open_handles = 3;
  c->next = conns;
  if (conns) conns->prev = c;
  conns = c;
  live++;
  watch_upstream(c, UV_READABLE);
  serve_next(c);
  napi_get_boolean(env, true, &result);
  return result;
refused:
  conn_free(c);
  return result;
}

static conn *find(uint32_t id) {
  for (conn *c = conns; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static uint32_t arg_id(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t id = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_value_uint32(env, argv[0], &id);
  return id;
}

/*
 * release(id): the route may have changed. Waiting for a request, or with
 * one not yet answered (its upstream connection dropped; a GET or HEAD is
 * sent again), the client goes back to JavaScript now; mid-answer, once
 * the answer is whole.
 */
static napi_value release(napi_env env, napi_callback_info info) {
  conn *c = find(arg_id(env, info));
  if (!c) return NULL;
  in_js++;
  if (c->busy && c->answering)
    c->release = 1;
  else
    hand_back(c);
  in_js--;
  return NULL;
}

/* drop(id): closes the pin's connections. */
static napi_value drop(napi_env env, napi_callback_info info) {
  conn *c = find(arg_id(env, info));
  if (!c) return NULL;
  in_js++;
  close_both(c);
  in_js--;
  return NULL;
}

/* take(): how many answers are recorded in the entries array; the count starts again. */
static napi_value take(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_uint32(env, (uint32_t)entries_len, &v);
  entries_len = 0;
  return v;
}

static napi_value count(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_uint32(env, (uint32_t)live, &v);
  return v;
}

NAPI_MODULE_INIT() {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"init", init}, {"pin", pin},   {"release", release},
             {"drop", drop}, {"take", take}, {"count", count}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}
