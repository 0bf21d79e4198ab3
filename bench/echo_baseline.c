/*
 * echo_baseline.c - the ceiling for bench/rpc.sh: a minimal single-threaded epoll server that
 * answers every newline-delimited JSON-RPC request on a Unix socket with
 *     {"jsonrpc":"2.0","id":<id as sent>,"result":"pong"}
 * without parsing anything but the "id" member. It is what the shared bench README calls "a minimal
 * C server that only echoes ids"; bench/rpc.sh runs it beside agentd so that figures can be quoted as
 * ratios against a baseline measured in the same run.
 *
 *   gcc -O2 -Wall -o bench/out/echo-baseline bench/echo_baseline.c
 *   echo-baseline SOCKET        (SIGTERM/SIGINT: unlink SOCKET, exit 0)
 *
 * Not part of agentd; newline framing only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *in; size_t inlen, incap;
    char *out; size_t outoff, outlen, outcap;
    int want_out;
} conn_t;

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static void die(const char *what) { perror(what); exit(1); }

static void reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 65536;
    while (c < need) c *= 2;
    if (!(*buf = realloc(*buf, c))) die("realloc");
    *cap = c;
}

/* Appends the reply to one request line (no validation: the load generator sends valid JSON). */
static void answer(conn_t *c, const char *p, size_t len) {
    static const char pre[] = "{\"jsonrpc\":\"2.0\",\"id\":", post[] = ",\"result\":\"pong\"}\n";
    const char *id = "null"; size_t idl = 4;
    const char *k = memmem(p, len, "\"id\"", 4);
    if (k) {
        const char *v = k + 4, *e = p + len;
        while (v < e && (*v == ' ' || *v == ':')) v++;
        const char *ve = v;
        if (ve < e && *ve == '"') { for (ve++; ve < e && *ve != '"'; ve++) if (*ve == '\\') ve++; ve++; }
        else while (ve < e && *ve != ',' && *ve != '}' && *ve != ' ') ve++;
        if (ve > v && ve <= e) { id = v; idl = (size_t)(ve - v); }
    }
    reserve(&c->out, &c->outcap, c->outlen + sizeof pre + idl + sizeof post);
    memcpy(c->out + c->outlen, pre, sizeof pre - 1); c->outlen += sizeof pre - 1;
    memcpy(c->out + c->outlen, id, idl); c->outlen += idl;
    memcpy(c->out + c->outlen, post, sizeof post - 1); c->outlen += sizeof post - 1;
}

static void close_conn(int ep, conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in); free(c->out); free(c);
}

/* Returns -1 when the connection must be closed. */
static int flush_out(int ep, conn_t *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) { c->outoff += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        return -1;
    }
    if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
    int want = c->outlen > 0;
    if (want != c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

static int on_readable(int ep, conn_t *c) {
    for (;;) {
        reserve(&c->in, &c->incap, c->inlen + 65536);
        ssize_t n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        c->inlen += (size_t)n;
        size_t start = 0;
        char *nl;
        while ((nl = memchr(c->in + start, '\n', c->inlen - start))) {
            size_t end = (size_t)(nl - c->in);
            if (end > start) answer(c, c->in + start, end - start);
            start = end + 1;
        }
        memmove(c->in, c->in + start, c->inlen - start);
        c->inlen -= start;
        if ((size_t)n < 65536) break;   /* drained the socket for now */
    }
    return flush_out(ep, c);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: echo-baseline SOCKET\n"); return 2; }
    const char *path = argv[1];
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 512) < 0) die("listen");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);

    struct epoll_event evs[64];
    while (!stop) {
        int n = epoll_wait(ep, evs, 64, 200);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn_t *nc = calloc(1, sizeof *nc);
                    if (!nc) die("calloc");
                    nc->fd = fd;
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            int rc = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) rc = on_readable(ep, c);
            else if (evs[i].events & EPOLLOUT) rc = flush_out(ep, c);
            if (rc < 0) close_conn(ep, c);
        }
    }
    unlink(path);
    return 0;
}
