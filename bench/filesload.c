/*
 * filesload.c - the client side of bench/files.sh: stores one file in agentd over its Unix socket
 * and prints how long it took.
 *
 *   gcc -O2 -Wall -o filesload filesload.c
 *   filesload -s SOCK -f FILE upload [-S SHA256HEX]   files.upload.begin, .chunk (base64, chunkSize
 *                                                     at a time, in order), .commit
 *   filesload -s SOCK -f FILE import                  files.import {path}
 *   filesload -s SOCK -f FILE chunk -n N              N calls of test.chunk with the file's first
 *                                                     4 MiB (the RPC layer alone: envelope parse,
 *                                                     params decode, base64 decode; for profiles)
 *
 * One request in flight (an upload's chunks must arrive in order), but the next chunk is read and
 * base64-encoded while the daemon handles the one just sent, as a careful client would do: the
 * figure is the daemon's, not this program's encoder's.
 *
 * Prints one line of key=value words: bytes, seconds, mbps (MB = 10^6 bytes of file content per
 * second), calls, and for uploads the time of begin, of the chunks and of commit, and the time
 * this program spent encoding. Exit status: 0 ok; 1 on an error reply (printed on stderr);
 * 2 on usage, I/O or connect failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "filesload: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int sock = -1;
static char *reply;          /* the last reply line, NUL-terminated */
static size_t reply_cap, reply_len, reply_have;

static void send_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(sock, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads the next line (a reply; notifications are not subscribed to) into `reply`. */
static void read_reply(void) {
    /* Drop the previous line, keep what followed it. */
    if (reply_len > 0) {
        memmove(reply, reply + reply_len + 1, reply_have - reply_len - 1);
        reply_have -= reply_len + 1;
        reply_len = 0;
    }
    for (;;) {
        char *nl = memchr(reply, '\n', reply_have);
        if (nl) {
            reply_len = (size_t)(nl - reply);
            *nl = 0;
            return;
        }
        if (reply_have == reply_cap) {
            reply_cap = reply_cap ? reply_cap * 2 : 65536;
            reply = realloc(reply, reply_cap + 1);
            if (!reply) die("realloc");
        }
        ssize_t r = read(sock, reply + reply_have, reply_cap - reply_have);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (r == 0) {
            fprintf(stderr, "filesload: the daemon closed the connection\n");
            exit(2);
        }
        reply_have += (size_t)r;
    }
}

/* The reply must be a result; else it is printed and the program fails. */
static void expect_result(const char *method) {
    if (strstr(reply, "\"error\"") || !strstr(reply, "\"result\"")) {
        fprintf(stderr, "filesload: %s failed: %.2000s\n", method, reply);
        exit(1);
    }
}

/* A string member of the reply (no escapes expected), copied into out. */
static int field_string(const char *name, char *out, size_t cap) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *p = strstr(reply, key);
    if (!p) return -1;
    p += strlen(key);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= cap) return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    return 0;
}

static long long field_number(const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(reply, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64(const unsigned char *in, size_t n, char *out) {
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        o[0] = b64[v >> 18];
        o[1] = b64[(v >> 12) & 63];
        o[2] = b64[(v >> 6) & 63];
        o[3] = b64[v & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        o[0] = b64[v >> 18];
        o[1] = b64[(v >> 12) & 63];
        o[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - out);
}

static int file;
static long long file_size;
static unsigned char *raw;
static char *message;        /* one request: prefix, base64, suffix */
static int next_id = 1;

/* Builds the request carrying the file's bytes [offset, offset + n) in `message`; returns its length. */
static size_t build_chunk(const char *method, const char *upload_id, long long offset, size_t n, double *encode_seconds) {
    double t0 = now();
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(file, raw + got, n - got, offset + (off_t)got);
        if (r < 0) die("pread");
        if (r == 0) {
            fprintf(stderr, "filesload: the file shrank\n");
            exit(2);
        }
        got += (size_t)r;
    }
    int len = sprintf(message, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":{\"uploadId\":\"%s\",\"offset\":%lld,\"data\":\"",
                      next_id++, method, upload_id, offset);
    size_t total = (size_t)len + base64(raw, n, message + len);
    memcpy(message + total, "\"}}\n", 4);
    *encode_seconds += now() - t0;
    return total + 4;
}

static void usage(void) {
    fprintf(stderr, "usage: filesload -s SOCK -f FILE upload [-S SHA256] | import | chunk [-n N] [-c BYTES]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *path = NULL, *file_path = NULL, *sha = NULL;
    long calls = 10, chunk_bytes = 4 << 20;
    int opt;
    while ((opt = getopt(argc, argv, "s:f:S:n:c:")) != -1) {
        switch (opt) {
        case 's': path = optarg; break;
        case 'f': file_path = optarg; break;
        case 'S': sha = optarg; break;
        case 'n': calls = atol(optarg); break;
        case 'c': chunk_bytes = atol(optarg); break;
        default: usage();
        }
    }
    if (!path || !file_path || optind != argc - 1) usage();
    const char *mode = argv[optind];

    file = open(file_path, O_RDONLY | O_CLOEXEC);
    if (file < 0) die(file_path);
    struct stat st;
    if (fstat(file, &st) < 0) die("fstat");
    file_size = st.st_size;

    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) usage();
    strcpy(addr.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");

    double encode = 0, start = now();
    if (strcmp(mode, "import") == 0) {
        char *absolute = realpath(file_path, NULL);
        if (!absolute) die("realpath");
        char *m = malloc(strlen(absolute) + 128);
        int n = sprintf(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"files.import\",\"params\":{\"path\":\"%s\"}}\n", absolute);
        start = now();
        send_all(m, (size_t)n);
        read_reply();
        expect_result("files.import");
        double seconds = now() - start;
        printf("bytes=%lld seconds=%.4f mbps=%.1f calls=1\n", file_size, seconds, (double)file_size / seconds / 1e6);
        return 0;
    }

    if (strcmp(mode, "chunk") == 0) {
        size_t n = file_size < chunk_bytes ? (size_t)file_size : (size_t)chunk_bytes;
        raw = malloc(n);
        message = malloc(n / 3 * 4 + 4 + 256);
        start = now();
        for (long i = 0; i < calls; i++) {
            size_t len = build_chunk("test.chunk", "upl_profile", 0, n, &encode);
            send_all(message, len);
            read_reply();
            expect_result("test.chunk");
        }
        double seconds = now() - start;
        printf("bytes=%lld seconds=%.4f mbps=%.1f calls=%ld encodeSeconds=%.4f\n", (long long)n * calls, seconds,
               (double)n * (double)calls / seconds / 1e6, calls, encode);
        return 0;
    }

    if (strcmp(mode, "upload") != 0) usage();
    const char *name = strrchr(file_path, '/') ? strrchr(file_path, '/') + 1 : file_path;
    char begin[1024];
    int n = snprintf(begin, sizeof begin,
                     "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"files.upload.begin\",\"params\":{\"name\":\"%s\",\"size\":%lld%s%s%s}}\n",
                     next_id++, name, file_size, sha ? ",\"sha256\":\"" : "", sha ? sha : "", sha ? "\"" : "");
    send_all(begin, (size_t)n);
    read_reply();
    expect_result("files.upload.begin");
    char upload_id[128];
    long long chunk = field_number("chunkSize");
    if (field_string("uploadId", upload_id, sizeof upload_id) < 0 || chunk <= 0) {
        fprintf(stderr, "filesload: unexpected begin reply: %.500s\n", reply);
        return 1;
    }
    double began = now();

    raw = malloc((size_t)chunk);
    /* Two buffers: one being sent while the next is encoded. */
    char *messages[2] = {malloc((size_t)chunk / 3 * 4 + 4 + 256), malloc((size_t)chunk / 3 * 4 + 4 + 256)};
    long chunks = 0;
    long long offset = 0;
    size_t len = 0;
    if (file_size > 0) {
        message = messages[0];
        long long take = file_size < chunk ? file_size : chunk;
        len = build_chunk("files.upload.chunk", upload_id, 0, (size_t)take, &encode);
    }
    while (offset < file_size) {
        long long take = file_size - offset < chunk ? file_size - offset : chunk;
        char *sending = message;
        send_all(sending, len);
        chunks++;
        long long next = offset + take;
        if (next < file_size) {
            message = messages[chunks % 2];
            long long next_take = file_size - next < chunk ? file_size - next : chunk;
            len = build_chunk("files.upload.chunk", upload_id, next, (size_t)next_take, &encode);
        }
        read_reply();
        expect_result("files.upload.chunk");
        if (field_number("offset") != next) {
            fprintf(stderr, "filesload: chunk at %lld answered %.500s\n", offset, reply);
            return 1;
        }
        offset = next;
    }
    double chunked = now();

    n = snprintf(begin, sizeof begin, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"files.upload.commit\",\"params\":{\"uploadId\":\"%s\"}}\n",
                 next_id++, upload_id);
    send_all(begin, (size_t)n);
    read_reply();
    expect_result("files.upload.commit");
    double end = now();
    if (field_number("size") != file_size) {
        fprintf(stderr, "filesload: commit answered %.500s\n", reply);
        return 1;
    }
    double seconds = end - start;
    printf("bytes=%lld seconds=%.4f mbps=%.1f calls=%ld beginSeconds=%.4f chunksSeconds=%.4f commitSeconds=%.4f encodeSeconds=%.4f\n",
           file_size, seconds, (double)file_size / seconds / 1e6, chunks + 2, began - start, chunked - began, end - chunked, encode);
    return 0;
}
