/*
 * agentload.c - what agentd adds to a streamed answer: time to first token and per-delta latency,
 * through agentd (v2.agent.act over its Unix socket) or straight to the fake provider (HTTP on
 * loopback), with C concurrent runs.
 *
 * The fake provider's `fake-timestamped` model streams deltas whose text is the CLOCK_MONOTONIC
 * time (ns) at which the provider wrote them, followed by a space. CLOCK_MONOTONIC is one clock for
 * every process on the machine, so a receiver's latency for a delta is its read time minus the
 * stamp: exactly the path provider -> (agentd: libcurl, SSE parse, store nothing yet, notification)
 * -> client. Time to first token is the first delta's read time minus the time the request was sent.
 *
 *   cc -O2 -Wall -o agentload agentload.c
 *   agentload -s agentd.sock -c 1 -R 20            # 20 runs one after another through agentd
 *   agentload -H 127.0.0.1:PORT -c 1 -R 20         # the same requests straight to the provider
 *   agentload -s agentd.sock -c 50 -R 2            # 50 concurrent runs, twice
 *
 * Prints: runs, deltas, TTFT p50/p90/p99/max, delta latency p50/p90/p99/max (µs).
 * Checks: every run ends with its result (agentd) or [DONE] (direct), no error reply, and every
 * run received the same number of deltas. Exit status 0 ok, 1 a check failed, 2 usage/connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path = NULL;   /* -s: through agentd */
static const char *direct = NULL;      /* -H host:port: straight to the provider */
static const char *model = "fake-timestamped";
static int concurrency = 1, rounds = 10;
static double deadline_secs = 120;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(2); }

typedef struct {
    int fd;
    uint64_t sent_ns, first_ns;
    int deltas;
    int done, failed;
    char *buf;
    size_t len, cap;
} run_t;

static uint64_t *ttft;   static size_t n_ttft;
static uint64_t *lat;    static size_t n_lat, cap_lat;

static void add_latency(uint64_t v) {
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? cap_lat * 2 : 4096;
        lat = realloc(lat, cap_lat * sizeof *lat);
        if (!lat) die("realloc");
    }
    lat[n_lat++] = v;
}

static int open_connection(void) {
    int fd;
    if (sock_path) {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect (agentd socket)");
    } else {
        char host[64];
        const char *colon = strrchr(direct, ':');
        if (!colon || colon - direct >= (long)sizeof host) { fprintf(stderr, "-H wants host:port\n"); exit(2); }
        memcpy(host, direct, colon - direct);
        host[colon - direct] = 0;
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
        if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "-H: bad address\n"); exit(2); }
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect (provider)");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) { if (errno == EINTR) continue; die("write"); }
        data += n; len -= n;
    }
}

static void start_run(run_t *run, int id) {
    char body[512], request[1024];
    run->fd = open_connection();
    run->deltas = 0; run->done = 0; run->failed = 0; run->first_ns = 0; run->len = 0;
    if (sock_path) {
        int n = snprintf(request, sizeof request,
            "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"v2.agent.act\",\"params\":{\"message\":\"benchmark run %d\",\"model\":\"%s\"}}\n",
            id, id, model);
        run->sent_ns = now_ns();
        send_all(run->fd, request, n);
    } else {
        int b = snprintf(body, sizeof body,
            "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"benchmark run %d\"}],\"stream\":true,"
            "\"stream_options\":{\"include_usage\":true}}", model, id);
        int n = snprintf(request, sizeof request,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer bench-key-not-secret\r\n"
            "Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
            direct, b, body);
        run->sent_ns = now_ns();
        send_all(run->fd, request, n);
    }
}

/* A delta's stamp: the digits right after `key` (`"text":"` or `"content":"`). */
static int stamp_after(const char *line, const char *key, uint64_t *stamp) {
    const char *p = strstr(line, key);
    if (!p) return 0;
    p += strlen(key);
    if (*p < '0' || *p > '9') return 0;
    *stamp = strtoull(p, NULL, 10);
    return 1;
}

/* One complete line of the run's stream (NDJSON from agentd; HTTP head, chunk sizes and SSE lines
 * from the provider: only `data:` lines matter). */
static void handle_line(run_t *run, const char *line, uint64_t t) {
    uint64_t stamp;
    if (sock_path) {
        if (strstr(line, "\"method\":\"agent.delta\"")) {
            if (stamp_after(line, "\"text\":\"", &stamp)) {
                if (!run->first_ns) run->first_ns = t;
                add_latency(t - stamp);
                run->deltas++;
            }
        } else if (strstr(line, "\"error\":")) {
            fprintf(stderr, "error reply: %.300s\n", line);
            run->failed = 1; run->done = 1;
        } else if (strstr(line, "\"result\":")) {
            run->done = 1;
        }
    } else if (!strncmp(line, "data: ", 6)) {
        if (!strncmp(line + 6, "[DONE]", 6)) { run->done = 1; return; }
        if (strstr(line, "\"error\"")) { fprintf(stderr, "error event: %.300s\n", line); run->failed = 1; run->done = 1; return; }
        if (stamp_after(line, "\"content\":\"", &stamp)) {
            if (!run->first_ns) run->first_ns = t;
            add_latency(t - stamp);
            run->deltas++;
        }
    }
}

static void read_run(run_t *run) {
    if (run->cap - run->len < 65536) {
        run->cap = run->cap ? run->cap * 2 : 1 << 17;
        run->buf = realloc(run->buf, run->cap);
        if (!run->buf) die("realloc");
    }
    ssize_t n = read(run->fd, run->buf + run->len, run->cap - run->len - 1);
    uint64_t t = now_ns();
    if (n <= 0) {
        if (!run->done) { fprintf(stderr, "connection closed before the end of a run\n"); run->failed = 1; run->done = 1; }
        return;
    }
    run->len += n;
    run->buf[run->len] = 0;
    char *start = run->buf, *nl;
    while ((nl = memchr(start, '\n', run->buf + run->len - start))) {
        *nl = 0;
        handle_line(run, start, t);
        start = nl + 1;
    }
    run->len = run->buf + run->len - start;
    memmove(run->buf, start, run->len);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p * (n - 1) + 0.5);
    return v[i] / 1000.0;
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "s:H:m:c:R:D:")) != -1) {
        switch (opt) {
        case 's': sock_path = optarg; break;
        case 'H': direct = optarg; break;
        case 'm': model = optarg; break;
        case 'c': concurrency = atoi(optarg); break;
        case 'R': rounds = atoi(optarg); break;
        case 'D': deadline_secs = atof(optarg); break;
        default:
            fprintf(stderr, "usage: agentload (-s SOCKET | -H HOST:PORT) [-m MODEL] [-c CONCURRENT] [-R ROUNDS] [-D DEADLINE_S]\n");
            return 2;
        }
    }
    if (!!sock_path == !!direct || concurrency < 1 || rounds < 1) {
        fprintf(stderr, "agentload: exactly one of -s and -H; -c and -R at least 1\n");
        return 2;
    }
    run_t *runs = calloc(concurrency, sizeof *runs);
    struct pollfd *fds = calloc(concurrency, sizeof *fds);
    ttft = calloc((size_t)concurrency * rounds, sizeof *ttft);
    int failures = 0, expected_deltas = -1, uneven = 0;
    uint64_t deadline = now_ns() + (uint64_t)(deadline_secs * 1e9);

    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < concurrency; i++) start_run(&runs[i], round * concurrency + i + 1);
        int open = concurrency;
        while (open > 0) {
            for (int i = 0; i < concurrency; i++) { fds[i].fd = runs[i].done ? -1 : runs[i].fd; fds[i].events = POLLIN; }
            if (now_ns() > deadline) { fprintf(stderr, "agentload: deadline passed with %d runs open\n", open); return 1; }
            if (poll(fds, concurrency, 1000) < 0 && errno != EINTR) die("poll");
            for (int i = 0; i < concurrency; i++) {
                if (runs[i].done || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                read_run(&runs[i]);
                if (runs[i].done) open--;
            }
        }
        for (int i = 0; i < concurrency; i++) {
            run_t *run = &runs[i];
            close(run->fd);
            if (run->failed) { failures++; continue; }
            if (run->first_ns) ttft[n_ttft++] = run->first_ns - run->sent_ns;
            if (expected_deltas < 0) expected_deltas = run->deltas;
            else if (run->deltas != expected_deltas) uneven = 1;
        }
    }
    qsort(ttft, n_ttft, sizeof *ttft, cmp_u64);
    qsort(lat, n_lat, sizeof *lat, cmp_u64);
    printf("%s c=%d runs=%zu deltas=%zu ttft_us p50=%.0f p90=%.0f p99=%.0f max=%.0f delta_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n",
        sock_path ? "agentd" : "direct", concurrency, n_ttft, n_lat,
        pct(ttft, n_ttft, .5), pct(ttft, n_ttft, .9), pct(ttft, n_ttft, .99), pct(ttft, n_ttft, 1),
        pct(lat, n_lat, .5), pct(lat, n_lat, .9), pct(lat, n_lat, .99), pct(lat, n_lat, 1));
    if (failures) fprintf(stderr, "agentload: %d runs failed\n", failures);
    if (uneven) fprintf(stderr, "agentload: runs received different numbers of deltas\n");
    if (!n_lat) fprintf(stderr, "agentload: no timestamped delta arrived (model %s?)\n", model);
    return failures || uneven || !n_lat ? 1 : 0;
}
