/*
 * Carries a judged connection's bytes in the kernel: splice(2) from one
 * socket into a pipe and from the pipe into the other socket, on the
 * process's own libuv loop, so the bytes are never copied through the
 * process's memory (a copying relay reads every byte in and writes it out).
 *
 * Two kinds of carry, each on duplicates of the descriptors of Node sockets
 * JavaScript no longer reads or writes:
 *   join(id, a, b, idleMs)         both ways until each side has ended (each
 *                                  end passed on as a half-close) or either
 *                                  fails;
 *   send(id, from, to, n, idleMs)  exactly n bytes one way, then JavaScript
 *                                  takes both sockets back (a response body
 *                                  of known length).
 * Either way JavaScript is told once, onEnd(id, carriedAtoB, extra, errno),
 * unless it cancelled the carry first: `extra` is what b carried to a (join),
 * or the bytes `from` already holds past the n (send). No byte moving for
 * idleMs (0: no limit) ends it with ETIMEDOUT. The duplicates are closed
 * before onEnd; the connections themselves close when JavaScript closes its
 * sockets too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* A pipe this large lets one splice move what a large read would. */
#define PIPE_SIZE (1 << 20)

typedef struct way {
  int from, to; /* indices into carry.fd */
  int pipe[2];
  size_t in_pipe;
  uint64_t carried;
  /* Bytes still to read, for a send; -1 for a join. */
  int64_t want;
  int eof;
  int done;
} way;

typedef struct carry {
  uint32_t id;
  int fd[2];
  uv_poll_t poll[2];
  int events[2];
  uv_timer_t idle;
  uint64_t idle_ms, last_moved;
  way w[2];
  int ways;
  int closing;
  int open_handles;
  struct carry *prev, *next;
} carry;

static napi_env g_env;
static uv_loop_t *loop;
static napi_ref on_end_ref;
static napi_async_context async_ctx;
static carry *carries;
static size_t live;

static void on_poll(uv_poll_t *h, int status, int events);

static void carry_free(carry *c) {
  for (int i = 0; i < 2; i++) {
    if (c->fd[i] >= 0) close(c->fd[i]);
    for (int j = 0; j < 2; j++)
      if (c->w[i].pipe[j] >= 0) close(c->w[i].pipe[j]);
  }
  free(c);
}

static void handle_closed(uv_handle_t *h) {
  carry *c = h->data;
  if (!--c->open_handles) carry_free(c);
}

/* Stops the carry and closes its descriptors; `tell`: JavaScript hears of it. */
static void finish(carry *c, int err, int tell) {
  if (c->closing) return;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    carries = c->next;
  if (c->next) c->next->prev = c->prev;
  live--;
  for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)&c->poll[i], handle_closed);
  uv_close((uv_handle_t *)&c->idle, handle_closed);
  if (!tell) return;
  double extra = 0;
  if (c->ways > 1) {
    extra = (double)c->w[1].carried;
  } else if (!err) {
    int held = 0;
    if (ioctl(c->fd[0], FIONREAD, &held) == 0) extra = held;
  }
  napi_env env = g_env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, global, result, argv[4];
  napi_create_uint32(env, c->id, &argv[0]);
  napi_create_double(env, (double)c->w[0].carried, &argv[1]);
  napi_create_double(env, extra, &argv[2]);
  napi_create_int32(env, err, &argv[3]);
  napi_get_reference_value(env, on_end_ref, &fn);
  napi_get_global(env, &global);
  if (napi_make_callback(env, async_ctx, global, fn, 4, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

/*
 * A way's pipe, made when its first byte is there to read: an idle
 * connection holds its two descriptors and no more. 0 when there is none
 * yet (nothing to read, or the end), -errno on failure.
 */
static int have_pipe(carry *c, way *w) {
  if (w->pipe[0] >= 0) return 1;
  char b;
  ssize_t n = recv(c->fd[w->from], &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
  if (n == 0) {
    w->eof = 1;
    return 0;
  }
  if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
  fcntl(w->pipe[1], F_SETPIPE_SZ, PIPE_SIZE); /* smaller is fine: splices just move less */
  return 1;
}

/*
 * Moves what can move now, one way: 0 when it waits (for the read side
 * when its pipe is empty, for the write side otherwise), 2 when it waits
 * after moving bytes, 1 when it is done, -errno on failure.
 */
static int pump(carry *c, way *w) {
  int any = 0;
  int piped = have_pipe(c, w);
  if (piped < 0) return piped;
  if (!piped) return w->eof ? 1 : 0;
  for (;;) {
    int moved = 0;
    if (!w->eof && w->want != 0) {
      size_t len = PIPE_SIZE - w->in_pipe;
      if (w->want > 0 && (uint64_t)w->want < len) len = (size_t)w->want;
      if (len > 0) {
        ssize_t n = splice(c->fd[w->from], NULL, w->pipe[1], NULL, len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          w->in_pipe += n;
          if (w->want > 0) w->want -= n;
          moved = 1;
        } else if (n == 0) {
          w->eof = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
          return -errno;
        }
      }
    }
    if (w->in_pipe > 0) {
      ssize_t n = splice(w->pipe[0], NULL, c->fd[w->to], NULL, w->in_pipe,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        w->in_pipe -= n;
        w->carried += n;
        moved = 1;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return -errno;
      }
    }
    if (w->in_pipe == 0 && (w->eof || w->want == 0)) return 1;
    if (!moved) return any ? 2 : 0;
    any = 1;
  }
}

/* Runs every way that is not done, then watches what they wait for. */
static void step(carry *c) {
  int events[2] = {0, 0};
  int all_done = 1;
  for (int i = 0; i < c->ways; i++) {
    way *w = &c->w[i];
    if (w->done) continue;
    int r = pump(c, w);
    if (r < 0) return finish(c, -r, 1);
    if (r == 2) {
      c->last_moved = uv_now(loop);
      r = 0;
    }
    if (r == 1) {
      w->done = 1;
      /* A join passes the end on; a send leaves the connections open. */
      if (w->want < 0) shutdown(c->fd[w->to], SHUT_WR);
      continue;
    }
    all_done = 0;
    if (w->in_pipe > 0)
      events[w->to] |= UV_WRITABLE;
    else
      events[w->from] |= UV_READABLE;
  }
  if (all_done) {
    /* A send that ended before its length is a failure: the connection broke. */
    int short_send = c->w[0].want > 0;
    return finish(c, short_send ? EPIPE : 0, 1);
  }
  for (int i = 0; i < 2; i++) {
    if (events[i] == c->events[i]) continue;
    c->events[i] = events[i];
    if (events[i])
      uv_poll_start(&c->poll[i], events[i], on_poll);
    else
      uv_poll_stop(&c->poll[i]);
  }
}

static void on_idle(uv_timer_t *t) {
  carry *c = t->data;
  uint64_t quiet = uv_now(loop) - c->last_moved;
  if (quiet >= c->idle_ms) return finish(c, ETIMEDOUT, 1);
  uv_timer_start(&c->idle, on_idle, c->idle_ms - quiet, 0);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  carry *c = h->data;
  if (c->closing) return;
  if (status < 0) return finish(c, -status, 1);
  step(c);
}

/* --- JavaScript's side ------------------------------------------------------- */

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value boolean(napi_env env, int v) {
  napi_value b;
  napi_get_boolean(env, v, &b);
  return b;
}

/* init(onEnd) */
static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (on_end_ref) napi_delete_reference(env, on_end_ref);
  napi_create_reference(env, argv[0], 1, &on_end_ref);
  if (!async_ctx) {
    napi_create_string_utf8(env, "warren.carry", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &async_ctx);
  }
  g_env = env;
  napi_get_uv_event_loop(env, &loop);
  return undefined(env);
}

/* Starts a carry on duplicates of a and b; false (nothing started) when it cannot. */
static int start(uint32_t id, int a, int b, int64_t length, int64_t idle_ms) {
  carry *c = calloc(1, sizeof *c);
  if (!c) return 0;
  c->id = id;
  c->fd[0] = c->fd[1] = -1;
  c->ways = length < 0 ? 2 : 1;
  c->w[0] = (way){.from = 0, .to = 1, .want = length, .pipe = {-1, -1}};
  c->w[1] = (way){.from = 1, .to = 0, .want = -1, .pipe = {-1, -1}};
  c->fd[0] = fcntl(a, F_DUPFD_CLOEXEC, 0);
  c->fd[1] = fcntl(b, F_DUPFD_CLOEXEC, 0);
  if (c->fd[0] < 0 || c->fd[1] < 0) goto fail;
  if (uv_poll_init(loop, &c->poll[0], c->fd[0]) < 0) goto fail;
  c->poll[0].data = c;
  c->open_handles = 1;
  if (uv_poll_init(loop, &c->poll[1], c->fd[1]) < 0) {
    uv_close((uv_handle_t *)&c->poll[0], handle_closed);
    return 0;
  }
  c->poll[1].data = c;
  uv_timer_init(loop, &c->idle);
  c->idle.data = c;
  c->open_handles = 3;
  c->idle_ms = idle_ms > 0 ? (uint64_t)idle_ms : 0;
  c->last_moved = uv_now(loop);
  if (c->idle_ms) uv_timer_start(&c->idle, on_idle, c->idle_ms, 0);
  c->next = carries;
  if (carries) carries->prev = c;
  carries = c;
  live++;
  /* Nothing moves before the loop's next turn: onEnd never runs inside this call. */
  for (int i = 0; i < c->ways; i++) {
    c->events[c->w[i].from] |= UV_READABLE;
  }
  for (int i = 0; i < 2; i++)
    if (c->events[i]) uv_poll_start(&c->poll[i], c->events[i], on_poll);
  return 1;
fail:
  carry_free(c);
  return 0;
}

static int get_int(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* join(id, fdA, fdB, idleMs): boolean */
static napi_value join(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int64_t id, a, b, idle;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || !loop || !get_int(env, argv[0], &id) || !get_int(env, argv[1], &a) ||
      !get_int(env, argv[2], &b) || !get_int(env, argv[3], &idle))
    return boolean(env, 0);
  return boolean(env, start((uint32_t)id, (int)a, (int)b, -1, idle));
}

/* send(id, fromFd, toFd, length, idleMs): boolean */
static napi_value send_(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t id, from, to, length, idle;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5 || !loop || !get_int(env, argv[0], &id) || !get_int(env, argv[1], &from) ||
      !get_int(env, argv[2], &to) || !get_int(env, argv[3], &length) || length <= 0 ||
      !get_int(env, argv[4], &idle))
    return boolean(env, 0);
  return boolean(env, start((uint32_t)id, (int)from, (int)to, length, idle));
}

/* cancel(id): stops the carry without telling onEnd. */
static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t id;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !get_int(env, argv[0], &id)) return undefined(env);
  for (carry *c = carries; c; c = c->next)
    if (c->id == (uint32_t)id) {
      finish(c, 0, 0);
      break;
    }
  return undefined(env);
}

static napi_value count(napi_env env, napi_callback_info info) {
  napi_value n;
  napi_create_uint32(env, (uint32_t)live, &n);
  return n;
}

static napi_value module_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
      {"join", NULL, join, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL},
      {"count", NULL, count, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
