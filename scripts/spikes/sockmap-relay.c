// Spike (scripts/spikes/sockmap-relay.sh): a TCP relay whose bytes the kernel
// carries (sockmap + sk_skb verdict redirect), a read/write relay, and a reader.
// One connection at a time; the reader knows the size (a redirect carries no FIN).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof *a); }

static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(s, (void *)&a, sizeof a) || listen(s, 16)) { perror("listen"); exit(1); }
  return s;
}
static int dial(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (void *)&a, sizeof a)) { perror("connect"); exit(1); }
  return s;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  const char *mode = argv[1];
  if (!strcmp(mode, "read")) {
    int s = dial(atoi(argv[2]));
    long long want = atoll(argv[3]), got = 0;
    static char buf[1 << 20];
    double t0 = now();
    while (got < want) { ssize_t n = read(s, buf, sizeof buf); if (n <= 0) break; got += n; }
    double dt = now() - t0;
    printf("%.0f\n", got / dt / (1 << 20));
    return 0;
  }
  int port = atoi(argv[2]), up = atoi(argv[3]);
  int l = listen_on(port);
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    int c = accept(l, NULL, NULL);
    int u = dial(up);
    if (!strcmp(mode, "copy")) {
      static char buf[1 << 20];
      for (;;) { ssize_t n = read(u, buf, sizeof buf); if (n <= 0) break; for (ssize_t o = 0; o < n;) { ssize_t w = write(c, buf + o, n - o); if (w <= 0) goto done; o += w; } }
    done:
      close(c); close(u);
      continue;
    }
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_SOCKMAP; a.key_size = 4; a.value_size = 4; a.max_entries = 2;
    int map = bpf(BPF_MAP_CREATE, &a);
    if (map < 0) { perror("map"); return 1; }
    struct bpf_insn prog[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 6, .src_reg = 1},
      {.code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = 2, .src_reg = 1, .off = offsetof(struct __sk_buff, local_port)},
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = 0},
      {.code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = 2, .off = 1, .imm = port},
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = 1},
      {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 6},
      {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 2, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map},
      {0},
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 4, .imm = 0},
      {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_sk_redirect_map},
      {.code = BPF_JMP | BPF_EXIT},
    };
    static char log[65536];
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SK_SKB; a.insns = (unsigned long)prog; a.insn_cnt = sizeof prog / sizeof prog[0];
    a.license = (unsigned long)"GPL"; a.log_buf = (unsigned long)log; a.log_size = sizeof log; a.log_level = 1;
    int pfd = bpf(BPF_PROG_LOAD, &a);
    if (pfd < 0) { perror("prog"); fprintf(stderr, "%s\n", log); return 1; }
    memset(&a, 0, sizeof a);
    a.target_fd = map; a.attach_bpf_fd = pfd; a.attach_type = getenv("PLAIN") ? BPF_SK_SKB_VERDICT : BPF_SK_SKB_STREAM_VERDICT;
    if (bpf(BPF_PROG_ATTACH, &a)) { perror("attach"); return 1; }
    int k0 = 0, k1 = 1;
    memset(&a, 0, sizeof a); a.map_fd = map; a.key = (unsigned long)&k0; a.value = (unsigned long)&c; a.flags = BPF_ANY;
    if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("update c"); return 1; }
    memset(&a, 0, sizeof a); a.map_fd = map; a.key = (unsigned long)&k1; a.value = (unsigned long)&u; a.flags = BPF_ANY;
    if (bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("update u"); return 1; }
    // The kernel carries it now; the relay waits for the client to go.
    char b;
    recv(c, &b, 1, 0);
    close(c); close(u); close(pfd); close(map);
  }
}
