/*
 * eventload.c - event fan-out load for agentd: one writer, S subscribed connections.
 *
 * One thread, one epoll set, a Unix socket on this machine. The writer creates a chat and then
 * pipelines chats.messages.append (-d in flight, optionally paced at -r events/s); every subscriber
 * connection holds one events.subscribe and reads its events.event notifications as they come.
 * K of the subscribers (-k) subscribe and then never read again (a stalled client); at the end they
 * are read once to see whether the daemon ended them with events.overflow.
 *
 * Latency is publish-to-receive: the time a subscriber read a notification minus the time the
 * writer sent the append that made it. The writer maps request id -> send time, and on the reply
 * messageId -> send time; a notification is matched by its messageId (one that arrives before its
 * append's reply waits for it). The interval includes the append's own commit (group commit): an
 * upper bound for the bus's part. Latencies are those of the appends sent in the measured window
 * (all of their notifications are waited for, so a backlog shows up as latency, not as omissions).
 *
 *   cc -O2 -Wall -o eventload eventload.c
 *   eventload -s agentd.sock -S 100 -T 10 -W 2            # unthrottled writer, 16 appends in flight
 *   eventload -s agentd.sock -S 100 -r 2000 -T 10 -W 2    # paced: 2,000 events/s x 100 readers
 *   eventload -s agentd.sock -S 100 -k 1 ...              # one of the 100 never reads
 *
 * Checks: every reading subscriber receives every append's notification exactly once, in seq order
 * (counts and strictly increasing seq), no reply is an error, no reading subscriber overflows.
 * Exit status: 0 ok; 1 when a check fails; 2 on usage or connection failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ settings */

static const char *sock_path;
static int n_subs = 100, n_stalled = 0, depth = 16;
static double rate = 0;                  /* appends/s; 0 = as fast as replies allow */
static double warmup = 2, duration = 10, drain_secs = 15;
static const char *topic = "chat.message.created";
static int daemon_pid = 0;               /* -P: sample its CPU over the window */
static long queue_capacity = 4096;       /* -Q: the daemon's events.queue_capacity (only for the report) */
static const char *label = "-";
static int verbose = 0;                  /* -v: latency by second */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(2); }
static void fatal(const char *msg) { fprintf(stderr, "eventload: %s\n", msg); exit(2); }

/* ------------------------------------------------------------------ latency histogram */
/* Log-linear: exact below 256 ns, then 128 sub-buckets per power of two (< 0.8% error). */

#define SUB 128
#define HBUCKETS (SUB * 2 + 57 * SUB)
typedef struct { uint64_t c[HBUCKETS], n, max, sum; } hist_t;
static hist_t lat;        /* publish-to-receive, per notification */
static hist_t rtt;        /* the append's own round trip (send to reply: its commit) */
static hist_t after;      /* notification read minus the append's reply read (0 when it came first) */
static uint64_t before_reply;   /* notifications read before their append's reply */

static int hbucket(uint64_t v) {
    if (v < 2 * SUB) return (int)v;
    int e = 63 - __builtin_clzll(v) - 7;          /* v >> e is in [128, 256) */
    return SUB * (e + 1) + (int)((v >> e) - SUB);
}
static uint64_t hupper(int b) {
    if (b < 2 * SUB) return (uint64_t)b;
    int e = b / SUB - 1;
    return (((uint64_t)(b % SUB + SUB) + 1) << e) - 1;
}
static void hrecord(hist_t *h, uint64_t v) {
    h->c[hbucket(v)]++; h->n++; h->sum += v;
    if (v > h->max) h->max = v;
}
static double hq(const hist_t *h, double q) {     /* in ms */
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), acc = 0;
    if (want < 1) want = 1;
    for (int b = 0; b < HBUCKETS; b++)
        if ((acc += h->c[b]) >= want) { uint64_t u = hupper(b); return (u < h->max ? u : h->max) / 1e6; }
    return h->max / 1e6;
}

/* ------------------------------------------------------------------ messages: id -> send time */
/* A message id is "msg_" + 32 hex digits: kept as two 64-bit halves in an open-addressing table. */

typedef struct {
    uint64_t hi, lo;            /* hi == lo == 0: empty slot */
    uint64_t send_ns;           /* 0 until the append's reply came */
    uint64_t reply_ns;          /* when that reply came */
    struct early { uint64_t at; int conn; } *early;   /* notifications that came before the reply */
    uint32_t nearly, capearly;
} msg_t;

static msg_t *msgs;
static size_t msgs_cap, msgs_len;
static uint64_t t0, t_measure, t_end;
static uint64_t lat_samples_window;     /* notifications of appends sent in the window */

static int parse_hex128(const char *p, const char *e, uint64_t *hi, uint64_t *lo) {
    if (e - p < 32) return -1;
    uint64_t h = 0, l = 0;
    for (int i = 0; i < 32; i++) {
        char c = p[i]; int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        if (i < 16) h = h << 4 | (uint64_t)d; else l = l << 4 | (uint64_t)d;
    }
    if (!h && !l) l = 1;   /* keep 0/0 for empty (an all-zero id is astronomically unlikely) */
    *hi = h; *lo = l;
    return 0;
}

static msg_t *msg_slot(uint64_t hi, uint64_t lo) {
    if ((msgs_len + 1) * 2 > msgs_cap) {            /* grow at half full */
        size_t ncap = msgs_cap ? msgs_cap * 2 : 1 << 16;
        msg_t *n = calloc(ncap, sizeof *n);
        if (!n) die("calloc");
        for (size_t i = 0; i < msgs_cap; i++) {
            if (!msgs[i].hi && !msgs[i].lo) continue;
            size_t j = (msgs[i].lo ^ msgs[i].hi) & (ncap - 1);
            while (n[j].hi || n[j].lo) j = (j + 1) & (ncap - 1);
            n[j] = msgs[i];
        }
        free(msgs); msgs = n; msgs_cap = ncap;
    }
    size_t j = (lo ^ hi) & (msgs_cap - 1);
    while (msgs[j].hi || msgs[j].lo) {
        if (msgs[j].hi == hi && msgs[j].lo == lo) return &msgs[j];
        j = (j + 1) & (msgs_cap - 1);
    }
    msgs[j].hi = hi; msgs[j].lo = lo; msgs_len++;
    return &msgs[j];
}

static void latency_sample(uint64_t send_ns, uint64_t reply_ns, uint64_t recv_ns, int conn);

/* ------------------------------------------------------------------ connections */

enum { WRITER, READER, STALLED };

typedef struct {
    int fd, kind, index;
    char *rbuf; size_t rlen, rcap;
    char *wbuf; size_t wlen, woff, wcap;
    int want_out;
    char sub[64];
    int64_t last_seq;
    uint64_t got, got_window, disorder, other;   /* events.event received, in window, seq not increasing, non-message events */
    int overflowed; int64_t overflow_last_seq;
    uint64_t lat_max;
} conn_t;

static conn_t *conns;       /* [0] writer, then readers, then stalled */

static hist_t *per_second;   /* -v: publish-to-receive by second of the window (by send time) */
static int n_seconds;

static void latency_sample(uint64_t send_ns, uint64_t reply_ns, uint64_t recv_ns, int conn) {
    if (send_ns < t_measure || send_ns >= t_end) return;
    uint64_t v = recv_ns > send_ns ? recv_ns - send_ns : 0;
    if (per_second) {
        int k = (int)((send_ns - t_measure) / 1000000000ull);
        if (k < n_seconds) hrecord(&per_second[k], v);
    }
    if (recv_ns >= reply_ns) hrecord(&after, recv_ns - reply_ns);
    else { hrecord(&after, 0); before_reply++; }
    hrecord(&lat, v);
    if (v > conns[conn].lat_max) conns[conn].lat_max = v;
    lat_samples_window++;
}
static int n_conns, epfd;

/* writer */
static uint64_t next_id = 10, w_sent, w_replied, w_replied_window, w_errors, w_unmatched, w_inflight;
static uint64_t w_sent_window;
#define RING 65536
static uint64_t ring_sent[RING], ring_id[RING];
static char chat_id[64];

/* counters */
static uint64_t malformed, reader_overflows, unknown_msgs;

/* reader 0's receive time by seq (for dating the stalled client's overflow) */
static uint64_t *seq_time; static size_t seq_time_cap; static int64_t seq_base = -1;

static int open_conn(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) { usleep(100); continue; }
        close(fd); return -1;
    }
    return fd;
}

static void ep_set(conn_t *c, int op) {
    struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void rreserve(conn_t *c, size_t room) {
    if (c->rcap - c->rlen >= room) return;
    while (c->rcap - c->rlen < room) c->rcap = c->rcap ? c->rcap * 2 : 262144;
    if (!(c->rbuf = realloc(c->rbuf, c->rcap))) die("realloc");
}

/* Blocking request/reply during setup: sends `req`, returns the first line that is not a
 * notification (in a static buffer); bytes after it stay in c->rbuf. */
static char *call_sync(conn_t *c, const char *req) {
    static char line[65536];
    size_t len = strlen(req);
    for (size_t off = 0; off < len;) {
        ssize_t n = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("send");
        off += (size_t)n;
    }
    for (;;) {
        char *nl;
        while ((nl = memchr(c->rbuf, '\n', c->rlen))) {
            size_t l = (size_t)(nl - c->rbuf);
            int notification = l > 30 && memmem(c->rbuf, l < 64 ? l : 64, "\"method\":", 9) && !memmem(c->rbuf, l, "\"id\":", 5);
            if (!notification) {
                if (l >= sizeof line) fatal("reply too long");
                memcpy(line, c->rbuf, l); line[l] = 0;
            }
            memmove(c->rbuf, nl + 1, c->rlen - l - 1);
            c->rlen -= l + 1;
            if (!notification) return line;
        }
        rreserve(c, 65536);
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fatal("connection closed during setup");
        c->rlen += (size_t)n;
    }
}

/* Copies the string value after `key` (e.g. "\"subscription\":\"") into out. */
static int string_after(const char *s, const char *key, char *out, size_t outsz) {
    const char *p = strstr(s, key);
    if (!p) return -1;
    p += strlen(key);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= outsz) return -1;
    memcpy(out, p, (size_t)(q - p)); out[q - p] = 0;
    return 0;
}

/* ------------------------------------------------------------------ writer */

static void wreserve(conn_t *c, size_t extra) {
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wlen + extra <= c->wcap) return;
    if (c->woff) { memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff); c->wlen -= c->woff; c->woff = 0; }
    while (c->wlen + extra > c->wcap) c->wcap = c->wcap ? c->wcap * 2 : 65536;
    if (!(c->wbuf = realloc(c->wbuf, c->wcap))) die("realloc");
}

static void flush_out(conn_t *c) {
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) { c->woff += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        fatal("writer connection failed");
    }
    int want = c->woff < c->wlen;
    if (want != c->want_out) { c->want_out = want; ep_set(c, EPOLL_CTL_MOD); }
}

static void send_append(conn_t *c, uint64_t now) {
    uint64_t id = next_id++;
    wreserve(c, 512);
    int n = snprintf(c->wbuf + c->wlen, c->wcap - c->wlen,
        "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64 ",\"method\":\"chats.messages.append\",\"params\":{\"chatId\":\"%s\","
        "\"role\":\"user\",\"content\":\"eventload message %" PRIu64 ": a sentence of ordinary length.\"}}\n",
        id, chat_id, id);
    c->wlen += (size_t)n;
    ring_id[id & (RING - 1)] = id;
    ring_sent[id & (RING - 1)] = now;   /* taken just before the send() that carries it */
    w_sent++; w_inflight++;
    if (now >= t_measure && now < t_end) w_sent_window++;
}

static void on_reply(const char *p, size_t len, uint64_t now) {
    /* {"jsonrpc":"2.0","id":N,"result":{... "id":"msg_<32 hex>" ...}} or {... "error":{...}} */
    const char *e = p + len;
    const char *q = memmem(p, len, "\"id\":", 5);
    if (!q) { malformed++; return; }
    q += 5;
    uint64_t id = 0;
    if (q >= e || *q < '0' || *q > '9') { malformed++; return; }
    while (q < e && *q >= '0' && *q <= '9') id = id * 10 + (uint64_t)(*q++ - '0');
    size_t slot = id & (RING - 1);
    if (ring_id[slot] != id || !ring_sent[slot]) { w_unmatched++; return; }
    uint64_t sent = ring_sent[slot];
    ring_sent[slot] = 0;
    w_inflight--;
    const char *r = memmem(q, (size_t)(e - q), "\"result\":", 9);
    const char *m = r ? memmem(r, (size_t)(e - r), "\"id\":\"msg_", 10) : NULL;
    uint64_t hi, lo;
    if (!m || parse_hex128(m + 10, e, &hi, &lo) < 0) {
        w_errors++;
        if (w_errors <= 3) fprintf(stderr, "eventload: append failed: %.*s\n", (int)(len < 300 ? len : 300), p);
        return;
    }
    w_replied++;
    if (now >= t_measure && now < t_end) w_replied_window++;
    if (sent >= t_measure && sent < t_end) hrecord(&rtt, now - sent);
    msg_t *msg = msg_slot(hi, lo);
    msg->send_ns = sent;
    msg->reply_ns = now;
    for (uint32_t i = 0; i < msg->nearly; i++) latency_sample(sent, now, msg->early[i].at, msg->early[i].conn);
    free(msg->early); msg->early = NULL; msg->nearly = msg->capearly = 0;
}

/* ------------------------------------------------------------------ subscribers */

static void on_notification(conn_t *c, const char *p, size_t len, uint64_t now) {
    const char *e = p + len;
    size_t headlen = len < 64 ? len : 64;
    if (memmem(p, headlen, "\"events.overflow\"", 17)) {
        c->overflowed = 1;
        const char *q = memmem(p, len, "\"lastSeq\":", 10);
        c->overflow_last_seq = q ? strtoll(q + 10, NULL, 10) : -1;
        if (c->kind == READER) reader_overflows++;
        return;
    }
    if (!memmem(p, headlen, "\"events.event\"", 14)) { malformed++; return; }
    const char *m = memmem(p, len, "\"messageId\":\"msg_", 17);
    const char *s = memmem(m ? m : p, (size_t)(e - (m ? m : p)), "\"seq\":", 6);
    if (!s) { malformed++; return; }
    int64_t seq = 0;
    for (s += 6; s < e && *s >= '0' && *s <= '9'; s++) seq = seq * 10 + (*s - '0');
    if (seq <= c->last_seq) c->disorder++;
    c->last_seq = seq;
    if (!m) { c->other++; return; }            /* another topic (with "*"): not an append */
    uint64_t hi, lo;
    if (parse_hex128(m + 17, e, &hi, &lo) < 0) { malformed++; return; }
    c->got++;
    if (now >= t_measure && now < t_end) c->got_window++;
    if (c->index == 1) {                        /* reader 0: seq -> receive time */
        if (seq_base < 0) seq_base = seq;
        size_t k = (size_t)(seq - seq_base);
        if (seq >= seq_base) {
            if (k >= seq_time_cap) {
                size_t ncap = seq_time_cap ? seq_time_cap : 65536;
                while (ncap <= k) ncap *= 2;
                if (!(seq_time = realloc(seq_time, ncap * sizeof *seq_time))) die("realloc");
                memset(seq_time + seq_time_cap, 0, (ncap - seq_time_cap) * sizeof *seq_time);
                seq_time_cap = ncap;
            }
            seq_time[k] = now;
        }
    }
    if (c->kind != READER) return;             /* a stalled client's backlog, read at the end: no latency */
    msg_t *msg = msg_slot(hi, lo);
    if (msg->send_ns) { latency_sample(msg->send_ns, msg->reply_ns, now, c->index); return; }
    if (msg->nearly == msg->capearly) {
        msg->capearly = msg->capearly ? msg->capearly * 2 : 8;
        if (!(msg->early = realloc(msg->early, msg->capearly * sizeof *msg->early))) die("realloc");
    }
    msg->early[msg->nearly++] = (struct early){ now, c->index };
}

static void parse_lines(conn_t *c, uint64_t now);

/* Reads what the socket has; returns -1 at EOF or error. */
static int on_readable(conn_t *c) {
    int eof = 0;
    for (;;) {
        rreserve(c, 65536);
        size_t room = c->rcap - c->rlen;
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) { eof = 1; break; }
        c->rlen += (size_t)n;
        if ((size_t)n < room) break;
    }
    parse_lines(c, now_ns());
    return eof ? -1 : 0;
}

/* Handles every complete line in c->rbuf; keeps the incomplete rest. */
static void parse_lines(conn_t *c, uint64_t now) {
    char *p = c->rbuf, *e = c->rbuf + c->rlen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(e - p)))) {
        size_t len = (size_t)(nl - p);
        if (len) {
            if (c->kind == WRITER) {
                if (memmem(p, len < 40 ? len : 40, "\"method\":", 9)) { /* a notification on the writer: ignore */ }
                else on_reply(p, len, now);
            } else {
                on_notification(c, p, len, now);
            }
        }
        p = nl + 1;
    }
    c->rlen = (size_t)(e - p);
    memmove(c->rbuf, p, c->rlen);
}

/* ------------------------------------------------------------------ CPU accounting */

typedef struct { uint64_t wall, self_us, daemon_ticks, total_ticks, idle_ticks; } cpu_snap_t;

static void cpu_snapshot(cpu_snap_t *s) {
    s->wall = now_ns();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->self_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec
               + (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
    s->daemon_ticks = 0;
    if (daemon_pid > 0) {
        char path[64], buf[2048];
        snprintf(path, sizeof path, "/proc/%d/stat", daemon_pid);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f); buf[n] = 0; fclose(f);
            char *p = strrchr(buf, ')');     /* fields after the command name: 3 = state ... 14 utime 15 stime */
            unsigned long long ut = 0, st = 0;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
                s->daemon_ticks = ut + st;
        }
    }
    s->total_ticks = s->idle_ticks = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[10] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
            for (int i = 0; i < 8; i++) s->total_ticks += v[i];
            s->idle_ticks = v[3] + v[4];
        }
        fclose(f);
    }
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
    fprintf(stderr,
        "usage: eventload -s SOCKET [options]\n"
        "  -S N      subscriber connections (default 100)\n"
        "  -k K      of which K subscribe and then never read (default 0)\n"
        "  -t TOPIC  topic pattern to subscribe to (default chat.message.created; \"*\" for all)\n"
        "  -d D      appends in flight on the writer connection (default 16)\n"
        "  -r RATE   appends per second (default 0: as fast as the replies come)\n"
        "  -W SEC    warm-up (default 2)   -T SEC  measured window (default 10)\n"
        "  -D SEC    at most this long for late replies and notifications at the end (default 15)\n"
        "  -P PID    the daemon's pid: report its CPU use over the window\n"
        "  -Q N      the daemon's events.queue_capacity (default 4096; only to date an overflow)\n"
        "  -L LABEL  label of the RESULT line\n"
        "  -v        also print the latency of each second of the window\n");
    exit(2);
}

int main(int argc, char **argv) {
    int o;
    while ((o = getopt(argc, argv, "s:S:k:t:d:r:W:T:D:P:Q:L:vh")) != -1) {
        switch (o) {
        case 's': sock_path = optarg; break;
        case 'S': n_subs = atoi(optarg); break;
        case 'k': n_stalled = atoi(optarg); break;
        case 't': topic = optarg; break;
        case 'd': depth = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'W': warmup = atof(optarg); break;
        case 'T': duration = atof(optarg); break;
        case 'D': drain_secs = atof(optarg); break;
        case 'P': daemon_pid = atoi(optarg); break;
        case 'Q': queue_capacity = atol(optarg); break;
        case 'L': label = optarg; break;
        case 'v': verbose = 1; break;
        default: usage();
        }
    }
    if (!sock_path || n_subs < 1 || n_stalled < 0 || n_stalled >= n_subs || depth < 1 || depth > RING / 2 ||
        duration <= 0 || warmup < 0 || rate < 0 || strlen(topic) > 100)
        usage();
    signal(SIGPIPE, SIG_IGN);

    /* ---- setup: connect, subscribe (blocking), create the chat */
    n_conns = 1 + n_subs;
    conns = calloc((size_t)n_conns, sizeof *conns);
    for (int i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        c->index = i;
        c->kind = i == 0 ? WRITER : (i <= n_subs - n_stalled ? READER : STALLED);
        c->last_seq = -1;
        if ((c->fd = open_conn()) < 0) { fprintf(stderr, "connect %s: %s\n", sock_path, strerror(errno)); return 2; }
    }
    char req[512];
    for (int i = 1; i < n_conns; i++) {
        snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\",\"params\":{\"topics\":[\"%s\"]}}\n", topic);
        char *reply = call_sync(&conns[i], req);
        if (string_after(reply, "\"subscription\":\"", conns[i].sub, sizeof conns[i].sub) < 0) {
            fprintf(stderr, "eventload: events.subscribe failed: %s\n", reply); return 2;
        }
    }
    char *reply = call_sync(&conns[0], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"chats.create\",\"params\":{\"title\":\"eventload\"}}\n");
    if (string_after(reply, "\"id\":\"cht_", chat_id + 4, sizeof chat_id - 4) < 0) {
        fprintf(stderr, "eventload: chats.create failed: %s\n", reply); return 2;
    }
    memcpy(chat_id, "cht_", 4);

    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    for (int i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        if (c->kind != STALLED) ep_set(c, EPOLL_CTL_ADD);   /* stalled: never read until the end */
    }
    if (verbose) {
        n_seconds = (int)(duration + 0.999);
        if (!(per_second = calloc((size_t)n_seconds, sizeof *per_second))) die("calloc");
    }

    /* ---- run */
    t0 = now_ns();
    /* bytes that followed a setup reply (none expected: no event is written before the chat) */
    for (int i = 1; i < n_conns; i++)
        if (conns[i].kind == READER && conns[i].rlen) parse_lines(&conns[i], t0);
    t_measure = t0 + (uint64_t)(warmup * 1e9);
    t_end = t_measure + (uint64_t)(duration * 1e9);
    uint64_t drain_deadline = 0;
    cpu_snap_t cpu_a = {0}, cpu_b = {0};
    int have_a = 0, have_b = 0, stopping = 0;
    conn_t *w = &conns[0];
    struct epoll_event evs[256];
    int n_readers = n_subs - n_stalled;
    for (;;) {
        uint64_t now = now_ns();
        if (!have_a && now >= t_measure) { cpu_snapshot(&cpu_a); have_a = 1; }
        if (!have_b && now >= t_end) { cpu_snapshot(&cpu_b); have_b = 1; stopping = 1; drain_deadline = now + (uint64_t)(drain_secs * 1e9); }
        /* the writer: as many appends as are due (paced) or allowed (depth) */
        if (!stopping) {
            uint64_t due = rate > 0 ? (uint64_t)((double)(now - t0) * rate / 1e9) + 1 : UINT64_MAX;
            int queued = 0;
            while (w_inflight < (uint64_t)depth && w_sent < due) { send_append(w, now); queued = 1; }
            if (queued) flush_out(w);
        }
        if (stopping) {
            int done = w_inflight == 0;
            for (int i = 1; done && i < n_conns; i++)
                if (conns[i].kind == READER && conns[i].fd >= 0 && conns[i].got < w_replied) done = 0;
            if (done || now >= drain_deadline) break;
        }
        /* sleep until the next event, the next paced append, or a phase change */
        uint64_t wake = stopping ? drain_deadline : (!have_a ? t_measure : t_end);
        if (!stopping && rate > 0 && w_inflight < (uint64_t)depth) {
            uint64_t next = t0 + (uint64_t)((double)w_sent * 1e9 / rate);
            if (next < wake) wake = next;
        }
        uint64_t wait = wake > now ? wake - now : 0;
        if (wait > 50000000) wait = 50000000;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)wait };
        int n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll_pwait2");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (on_readable(c) < 0) {
                    if (c->kind == WRITER) fatal("the writer's connection closed");
                    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1;
                    continue;
                }
            }
            if (c->kind == WRITER && (evs[i].events & EPOLLOUT)) flush_out(c);
        }
    }
    uint64_t t_done = now_ns();

    /* ---- the stalled subscribers: read what waits for them (bounded in time) */
    uint64_t stalled_deadline = now_ns() + 5000000000ull;
    int stalled_overflowed = 0;
    for (int i = 1; i < n_conns; i++) {
        conn_t *c = &conns[i];
        if (c->kind != STALLED) continue;
        uint64_t quiet_since = now_ns();
        while (!c->overflowed && c->got < w_replied && now_ns() < stalled_deadline) {
            size_t before = c->rlen; uint64_t got = c->got;
            if (on_readable(c) < 0) break;
            if (c->got != got || c->rlen != before) quiet_since = now_ns();
            else if (now_ns() - quiet_since > 500000000ull) break;   /* nothing more comes */
            else usleep(1000);
        }
        stalled_overflowed += c->overflowed;
    }

    /* ---- results */
    if (!have_b) cpu_snapshot(&cpu_b);
    double secs = duration;
    uint64_t delivered_window = 0, delivered = 0, disorder = 0, missing = 0, other = 0, closed = 0;
    for (int i = 1; i < n_conns; i++) {
        conn_t *c = &conns[i];
        disorder += c->disorder;
        other += c->other;
        if (c->kind != READER) continue;
        delivered_window += c->got_window;
        delivered += c->got;
        if (c->got < w_replied) missing += w_replied - c->got;
        if (c->fd < 0) closed++;
    }
    uint64_t unresolved = 0;   /* notifications whose append never answered */
    for (size_t i = 0; i < msgs_cap; i++) if ((msgs[i].hi || msgs[i].lo) && !msgs[i].send_ns) { unresolved += msgs[i].nearly; unknown_msgs++; }

    double published_s = w_replied_window / secs, delivered_s = delivered_window / secs;
    printf("eventload: 1 writer (depth %d, %s), %d subscribers to \"%s\" (%d reading, %d stalled), warm-up %.1f s, window %.1f s\n",
           depth, rate > 0 ? "paced" : "unthrottled", n_subs, topic, n_readers, n_stalled, warmup, duration);
    if (rate > 0) printf("  pace:        %.0f appends/s requested\n", rate);
    printf("  published:   %.0f events/s (appends answered in the window; %" PRIu64 " in all, %" PRIu64 " errors)\n",
           published_s, w_replied, w_errors);
    printf("  delivered:   %.0f notifications/s over the %d reading subscribers (%.3f x published x readers)\n",
           delivered_s, n_readers, published_s > 0 ? delivered_s / (published_s * n_readers) : 0);
    printf("  latency:     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  mean %.2f ms  (%" PRIu64 " samples)\n",
           hq(&lat, .5), hq(&lat, .9), hq(&lat, .99), hq(&lat, .999), lat.max / 1e6, lat.n ? (double)lat.sum / lat.n / 1e6 : 0, lat.n);
    printf("               publish-to-receive: from the writer's send() of the append to a subscriber's read of its\n"
           "               notification, for the appends sent in the window; it includes the append's own commit, so\n"
           "               it is an upper bound for the bus's part\n");
    printf("  append rtt:  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (the writer's send to its reply: the commit's share)\n",
           hq(&rtt, .5), hq(&rtt, .99), rtt.max / 1e6);
    printf("  after reply: p50 %.2f ms  p99 %.2f ms  max %.2f ms  (notification read minus its append's reply read, both sent\n"
           "               after the commit: the fan-out's own delay; %.1f%% of notifications came before the reply, counted 0)\n",
           hq(&after, .5), hq(&after, .99), after.max / 1e6, lat.n ? 100.0 * before_reply / lat.n : 0);
    printf("  complete:    %" PRIu64 " notifications missing at the end (after %.1f s of drain), %" PRIu64 " out of order,"
           " %" PRIu64 " reader overflows, %" PRIu64 " readers closed, %" PRIu64 " malformed, %" PRIu64 " unanswered ids, %" PRIu64 " unmatched replies\n",
           missing, (t_done - t_end) / 1e9, disorder, reader_overflows, closed, malformed, unknown_msgs, w_unmatched);
    if (other) printf("               (%" PRIu64 " notifications of other topics ignored)\n", other);
    {   /* each reader's worst latency: a slow event loop shows as a group of readers with a high max */
        uint64_t *mx = calloc((size_t)n_readers, sizeof *mx);
        int k = 0;
        for (int i = 1; i < n_conns; i++) if (conns[i].kind == READER) mx[k++] = conns[i].lat_max;
        for (int i = 1; i < k; i++) for (int j = i; j > 0 && mx[j - 1] > mx[j]; j--) { uint64_t t = mx[j]; mx[j] = mx[j - 1]; mx[j - 1] = t; }
        int high = 0;
        for (int i = 0; i < k; i++) high += mx[i] > 2 * mx[k / 2];
        if (k) printf("  per reader:  max latency min %.2f ms, median %.2f ms, max %.2f ms; %d of %d readers saw more than 2x the median\n",
                      mx[0] / 1e6, mx[k / 2] / 1e6, mx[k - 1] / 1e6, high, k);
        free(mx);
    }
    for (int k = 0; k < n_seconds; k++)
        printf("  second %2d:   p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%" PRIu64 " samples)\n",
               k + 1, hq(&per_second[k], .5), hq(&per_second[k], .99), per_second[k].max / 1e6, per_second[k].n);
    for (int i = 1; i < n_conns; i++) {
        conn_t *c = &conns[i];
        if (c->kind != STALLED) continue;
        if (c->overflowed) {
            /* The stream ended once more than queue_capacity events waited: at about event lastSeq + capacity + 1. */
            int64_t at = c->overflow_last_seq + queue_capacity + 1;
            double when = -1;
            if (seq_base >= 0 && at >= seq_base && (size_t)(at - seq_base) < seq_time_cap && seq_time[at - seq_base])
                when = (seq_time[at - seq_base] - t0) / 1e9;
            printf("  stalled %s: events.overflow received (lastSeq %" PRId64 ", %" PRIu64 " events read before it);"
                   " it overflowed at ~seq %" PRId64 ", %s%.1f s after the start%s\n",
                   c->sub, c->overflow_last_seq, c->got, at, when < 0 ? "? (" : "", when < 0 ? 0 : when, when < 0 ? ")" : "");
        } else {
            printf("  stalled %s: NO events.overflow; %" PRIu64 " events waited for it\n", c->sub, c->got);
        }
    }
    double wall = (cpu_b.wall - cpu_a.wall) / 1e9;
    long hz = sysconf(_SC_CLK_TCK);
    double self_pct = wall > 0 ? (cpu_b.self_us - cpu_a.self_us) / 1e4 / wall : 0;
    double daemon_pct = wall > 0 && daemon_pid > 0 ? (double)(cpu_b.daemon_ticks - cpu_a.daemon_ticks) / hz / wall * 100 : -1;
    double tt = (double)(cpu_b.total_ticks - cpu_a.total_ticks);
    double busy_pct = tt > 0 ? (1 - (double)(cpu_b.idle_ticks - cpu_a.idle_ticks) / tt) * sysconf(_SC_NPROCESSORS_ONLN) * 100 : -1;
    printf("  cpu (window, %% of one core): eventload %.0f%%", self_pct);
    if (daemon_pct >= 0) printf(", agentd %.0f%%", daemon_pct);
    if (busy_pct >= 0) printf(", whole machine %.0f%% of %ld%%", busy_pct, sysconf(_SC_NPROCESSORS_ONLN) * 100);
    printf("\n");
    printf("RESULT label=%s readers=%d stalled=%d rate=%.0f published_per_s=%.0f delivered_per_s=%.0f"
           " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f rtt_p50_ms=%.3f rtt_p99_ms=%.3f after_reply_p50_ms=%.3f after_reply_p99_ms=%.3f missing=%" PRIu64 " disorder=%" PRIu64
           " reader_overflows=%" PRIu64 " stalled_overflowed=%d/%d tool_cpu_pct=%.0f agentd_cpu_pct=%.0f machine_cpu_pct=%.0f\n",
           label, n_readers, n_stalled, rate, published_s, delivered_s, hq(&lat, .5), hq(&lat, .9), hq(&lat, .99),
           hq(&lat, .999), lat.max / 1e6, hq(&rtt, .5), hq(&rtt, .99), hq(&after, .5), hq(&after, .99), missing, disorder, reader_overflows, stalled_overflowed, n_stalled,
           self_pct, daemon_pct, busy_pct);
    (void)unresolved;
    int bad = missing || disorder || reader_overflows || closed || malformed || w_errors || w_unmatched || unknown_msgs || !w_replied;
    return bad ? 1 : 0;
}
