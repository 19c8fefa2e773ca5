/*
 * link-gso: a link's IPv4 GSO and GRO size limits.
 *
 *   link-gso [-n NETNS] IFNAME SIZE   sets both (Linux 6.3+'s "BIG TCP" for IPv4)
 *   link-gso [-n NETNS] IFNAME        prints "gso gro"
 *
 * -n: the link is in the named network namespace (/run/netns/NETNS), which
 * this process enters first. (IFLA_TARGET_NETNSID would not do: on a set it
 * moves the link into that namespace.) Why a tool of our own: iproute2
 * before 6.3 has no keyword for these attributes. Exit 0; 1 with the reason
 * on stderr (a kernel without the attributes is "not supported"); 2 for bad
 * usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* From linux/if_link.h (older headers lack the last two). */
enum {
  A_TSO_MAX_SIZE = 59,
  A_GSO_IPV4_MAX_SIZE = 63,
  A_GRO_IPV4_MAX_SIZE = 64,
};

/* What a link reply said; -1 where it said nothing. */
typedef struct {
  int64_t tso_max, gso, gro;
} link_info;

typedef struct {
  struct nlmsghdr h;
  struct ifinfomsg i;
  char attrs[64];
} request;

static int nl;
static uint32_t seq;
/* The link as messages name it: "IFNAME" or "IFNAME in NETNS". */
static char label[512];

static void fail(const char *what, int err) {
  fprintf(stderr, "link-gso: %s: %s%s%s\n", label, what, err ? ": " : "", err ? strerror(err) : "");
  exit(1);
}

static void put_u32(request *r, int type, uint32_t v) {
  struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + sizeof v;
  memcpy((char *)a + NLA_HDRLEN, &v, sizeof v);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void begin(request *r, int type, int flags, unsigned ifindex) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = NLMSG_LENGTH(sizeof r->i);
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = NLM_F_REQUEST | flags;
  r->h.nlmsg_seq = ++seq;
  r->i.ifi_family = AF_UNSPEC;
  r->i.ifi_index = (int)ifindex;
}

static void parse(struct nlmsghdr *h, link_info *info) {
  *info = (link_info){-1, -1, -1};
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (RTA_PAYLOAD(a) < 4) continue;
    int32_t v;
    memcpy(&v, RTA_DATA(a), sizeof v);
    switch (a->rta_type) {
      case A_TSO_MAX_SIZE: info->tso_max = (uint32_t)v; break;
      case A_GSO_IPV4_MAX_SIZE: info->gso = (uint32_t)v; break;
      case A_GRO_IPV4_MAX_SIZE: info->gro = (uint32_t)v; break;
    }
  }
}

/* Sends r and waits for its answer: a link (into `info`) or an ack. 0 or an errno. */
static int talk(request *r, link_info *info) {
  static char buf[65536];
  if (send(nl, r, r->h.nlmsg_len, 0) < 0) return errno;
  for (;;) {
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != r->h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (h->nlmsg_type == RTM_NEWLINK && info) {
        parse(h, info);
        return 0;
      }
    }
  }
}

static void get(unsigned ifindex, link_info *info, const char *what) {
  request r;
  begin(&r, RTM_GETLINK, 0, ifindex);
  int err = talk(&r, info);
  if (err) fail(what, err);
}

static void set(unsigned ifindex, uint32_t size, const char *what) {
  request r;
  begin(&r, RTM_SETLINK, NLM_F_ACK, ifindex);
  put_u32(&r, A_GSO_IPV4_MAX_SIZE, size);
  put_u32(&r, A_GRO_IPV4_MAX_SIZE, size);
  int err = talk(&r, NULL);
  if (err) fail(what, err);
}

int main(int argc, char **argv) {
  const char *netns = NULL;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    netns = argv[2];
    argc -= 2;
    argv += 2;
  }
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: link-gso [-n NETNS] IFNAME [SIZE]\n");
    return 2;
  }
  if (netns)
    snprintf(label, sizeof label, "%s in %s", argv[1], netns);
  else
    snprintf(label, sizeof label, "%s", argv[1]);
  char *end = NULL;
  unsigned long size = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
  if (argc == 3 && (*argv[2] == '\0' || *end != '\0' || size < 65536 || size > UINT32_MAX)) {
    fprintf(stderr, "link-gso: SIZE must be a number of bytes, at least 65536\n");
    return 2;
  }
  if (netns) {
    char path[4096];
    if (strchr(netns, '/') || snprintf(path, sizeof path, "/run/netns/%s", netns) >= (int)sizeof path) {
      fprintf(stderr, "link-gso: %s: not a namespace name\n", netns);
      return 2;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("opening the namespace", errno);
    if (setns(fd, CLONE_NEWNET) < 0) fail("entering the namespace", errno);
    close(fd);
  }
  unsigned ifindex = if_nametoindex(argv[1]);
  if (!ifindex) fail("no such link", errno);
  nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (nl < 0) fail("opening rtnetlink", errno);

  link_info link;
  get(ifindex, &link, "reading the link");
  if (link.gso < 0) fail("IPv4 GSO size limits are not supported (Linux 6.3+)", 0);
  if (argc == 2) {
    printf("%lld %lld\n", (long long)link.gso, (long long)link.gro);
    return 0;
  }
  if (link.tso_max > 0 && size > (unsigned long)link.tso_max) {
    fprintf(stderr, "link-gso: %s: SIZE %lu is over the device's limit %lld\n", label, size,
            (long long)link.tso_max);
    return 1;
  }
  set(ifindex, (uint32_t)size, "setting the link");
  return 0;
}
