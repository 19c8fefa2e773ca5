/*
 * Carries a known number of bytes from one socket to another in the kernel:
 * splice(2) from the source into a pipe and from the pipe into the
 * destination, on the process's own libuv loop, so the bytes are never
 * copied through the process's memory (a copying relay reads every byte in
 * and writes it out). The egress proxy hands it the rest of a large response
 * body of known length.
 *
 *   send(id, from, to, n, idleMs)  carries exactly n bytes, on duplicates of
 *                                  the two Node sockets' descriptors (Node
 *                                  does not read `from` nor write `to`
 *                                  meanwhile), then JavaScript has both back.
 *
 * JavaScript is told once, onEnd(id, carried, extra, errno), unless it
 * cancelled the carry first: `extra` is what `from` already holds past the n
 * bytes; errno is EPIPE when `from` ended first, ETIMEDOUT when no byte moved
 * for idleMs (0: no limit), another errno when a socket failed. The
 * duplicates are closed before onEnd.
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

enum { FROM, TO };

typedef struct carry {
  uint32_t id;
  int fd[2];
  uv_poll_t poll[2];
  int events[2];
  uv_timer_t idle;
  uint64_t idle_ms, last_moved;
  int pipe[2];
  size_t in_pipe;
  uint64_t carried;
  /* Bytes still to read from `from`. */
  uint64_t want;
  int eof;
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
    if (c->pipe[i] >= 0) close(c->pipe[i]);
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
  int extra = 0;
  if (!err && ioctl(c->fd[FROM], FIONREAD, &extra) < 0) extra = 0;
  napi_env env = g_env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, global, result, argv[4];
  napi_create_uint32(env, c->id, &argv[0]);
  napi_create_double(env, (double)c->carried, &argv[1]);
  napi_create_int32(env, extra, &argv[2]);
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
 * The pipe, made when the first byte is there to read: a carry waiting on
 * a stalled source holds its two descriptors and no more. 0 when there is
 * none yet (nothing to read, or the end), -errno on failure.
 */
static int have_pipe(carry *c) {
  if (c->pipe[0] >= 0) return 1;
  char b;
  ssize_t n = recv(c->fd[FROM], &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
  if (n == 0) {
    c->eof = 1;
    return 0;
  }
  if (pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
  fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_SIZE); /* smaller is fine: splices just move less */
  return 1;
}

/*
 * Moves what can move now: 0 when it waits (for `from` when the pipe is
 * empty, for `to` otherwise), 1 when it is over (all carried, or `from`
 * ended), -errno on failure. Sets last_moved when bytes moved.
 */
static int pump(carry *c) {
  int piped = have_pipe(c);
  if (piped <= 0) return piped < 0 ? piped : c->eof;
  for (;;) {
    int moved = 0;
    if (!c->eof && c->want > 0 && c->in_pipe < PIPE_SIZE) {
      size_t len = PIPE_SIZE - c->in_pipe;
      if (c->want < len) len = (size_t)c->want;
      ssize_t n = splice(c->fd[FROM], NULL, c->pipe[1], NULL, len,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        c->in_pipe += n;
        c->want -= n;
        moved = 1;
      } else if (n == 0) {
        c->eof = 1;
      } else if (errno != EAGAIN && errno != EINTR) {
        return -errno;
      }
    }
    if (c->in_pipe > 0) {
      ssize_t n = splice(c->pipe[0], NULL, c->fd[TO], NULL, c->in_pipe,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        c->in_pipe -= n;
        c->carried += n;
        moved = 1;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return -errno;
      }
    }
    if (moved) c->last_moved = uv_now(loop);
    if (c->in_pipe == 0 && (c->eof || c->want == 0)) return 1;
    if (!moved) return 0;
  }
}

/* Moves what it can, then watches what the carry waits for. */
static void step(carry *c) {
  int r = pump(c);
  if (r < 0) return finish(c, -r, 1);
  /* Short of the length, `from` ended: the body was cut. */
  if (r == 1) return finish(c, c->want > 0 ? EPIPE : 0, 1);
  int events[2] = {0, 0};
  if (c->in_pipe > 0)
    events[TO] = UV_WRITABLE;
  else
    events[FROM] = UV_READABLE;
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

static int get_int(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
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

/* send(id, fromFd, toFd, length, idleMs): false (nothing started) when it cannot start. */
static napi_value send_(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t id, from, to, length, idle;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5 || !loop || !get_int(env, argv[0], &id) || !get_int(env, argv[1], &from) ||
      !get_int(env, argv[2], &to) || !get_int(env, argv[3], &length) || length <= 0 ||
      !get_int(env, argv[4], &idle))
    return boolean(env, 0);
  carry *c = calloc(1, sizeof *c);
  if (!c) return boolean(env, 0);
  c->id = (uint32_t)id;
  c->want = (uint64_t)length;
  c->pipe[0] = c->pipe[1] = -1;
  c->fd[FROM] = fcntl((int)from, F_DUPFD_CLOEXEC, 0);
  c->fd[TO] = fcntl((int)to, F_DUPFD_CLOEXEC, 0);
  if (c->fd[FROM] < 0 || c->fd[TO] < 0 || uv_poll_init(loop, &c->poll[FROM], c->fd[FROM]) < 0) {
    carry_free(c);
    return boolean(env, 0);
  }
  c->poll[FROM].data = c;
  c->open_handles = 1;
  if (uv_poll_init(loop, &c->poll[TO], c->fd[TO]) < 0) {
    uv_close((uv_handle_t *)&c->poll[FROM], handle_closed);
    return boolean(env, 0);
  }
  c->poll[TO].data = c;
  uv_timer_init(loop, &c->idle);
  c->idle.data = c;
  c->open_handles = 3;
  c->idle_ms = idle > 0 ? (uint64_t)idle : 0;
  c->last_moved = uv_now(loop);
  if (c->idle_ms) uv_timer_start(&c->idle, on_idle, c->idle_ms, 0);
  c->next = carries;
  if (carries) carries->prev = c;
  carries = c;
  live++;
  /* Nothing moves before the loop's next turn: onEnd never runs inside this call. */
  c->events[FROM] = UV_READABLE;
  uv_poll_start(&c->poll[FROM], UV_READABLE, on_poll);
  return boolean(env, 1);
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
      {"send", NULL, send_, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL},
      {"count", NULL, count, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
