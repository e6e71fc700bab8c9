/* htx_client.c — a complete C host of the HTX channel, libbetanet alone (no Python):
 * it opens a TCP connection, runs the Noise XK handshake in the core, sends MESSAGE on
 * stream 1 and prints the echo the server sends back (docs/htx.md, plain transport:
 * HTX directly over TCP, as `betanet.htx.serve(..., transport="plain")` offers).
 *
 *   usage: htx_client HOST PORT SERVER_PUBLIC_KEY_HEX [MESSAGE]
 *   exit:  0 echo received and equal, 1 usage or local failure,
 *          2 handshake failed (peer closed mid-handshake, wrong key, bad message),
 *          3 channel failure after the handshake (bad frame, CLOSE, early end).
 *
 * The client's static key is fresh per run (an XK client need not be known beforehand).
 * MESSAGE is at most 65535 bytes: what HTX's initial flow-control window lets a sender
 * put on one stream before the peer's first WINDOW_UPDATE. */
#define _DEFAULT_SOURCE
#include <betanet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INITIAL_WINDOW 65535u
#define STREAM_ID 1u

static uint8_t inbuf[65536];            /* received, not yet parsed: inbuf[in_off..in_len) */
static size_t in_off, in_len;
static uint8_t sealed[BETANET_HTX_SEAL_BYTES(BETANET_HTX_DEFAULT_MAX_FRAME_BYTES)];
static uint8_t plain[BETANET_HTX_DEFAULT_MAX_FRAME_BYTES];

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Refill inbuf when everything in it was parsed. 1: bytes available, 0: the peer closed,
 * -1: socket error. */
static int fill(int fd) {
    ssize_t r;
    if (in_off < in_len)
        return 1;
    do {
        r = recv(fd, inbuf, sizeof inbuf, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ECONNRESET)
        r = 0;                               /* the peer closed with our bytes unread */
    if (r <= 0)
        return r == 0 ? 0 : -1;
    in_off = 0;
    in_len = (size_t)r;
    return 1;
}

static int connect_tcp(const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    int fd = -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int parse_key(const char *hex, uint8_t *out) {
    size_t i;
    if (strlen(hex) != 64)
        return -1;
    for (i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* The Noise XK handshake in HTX's wire form (include/betanet/noise.h). */
static int handshake(int fd, const uint8_t *server_public, betanet_htx_session_t **session) {
    uint8_t my_static[BETANET_NOISE_KEY_BYTES], msg[BETANET_NOISE_XK_MAX_FRAME_BYTES];
    betanet_noise_xk_t *hs = NULL;
    size_t n, used;
    int rc;
    if (getrandom(my_static, sizeof my_static, 0) != (ssize_t)sizeof my_static) {
        fprintf(stderr, "htx_client: no randomness for the static key\n");
        return 1;
    }
    rc = betanet_noise_xk_new(BETANET_NOISE_INITIATOR, my_static, server_public,
                              (const uint8_t *)BETANET_NOISE_HTX_PROLOGUE,
                              BETANET_NOISE_HTX_PROLOGUE_BYTES, &hs);
    explicit_bzero(my_static, sizeof my_static);
    if (rc != 0) {
        fprintf(stderr, "htx_client: handshake set-up: %s\n", betanet_strerror(rc));
        return 1;
    }
    for (;;) {
        int next = betanet_noise_xk_action(hs);
        if (next == BETANET_NOISE_ACTION_WRITE) {
            rc = betanet_noise_xk_write_frame(hs, msg, sizeof msg, &n);
            if (rc != 0) {
                fprintf(stderr, "htx_client: handshake failed: %s\n", betanet_strerror(rc));
                break;
            }
            if (send_all(fd, msg, n) != 0) {
                fprintf(stderr, "htx_client: handshake failed: %s\n",
                        errno == EPIPE || errno == ECONNRESET
                        ? "the server closed the connection during the handshake" : strerror(errno));
                break;
            }
        } else if (next == BETANET_NOISE_ACTION_READ) {
            int got = fill(fd);
            if (got <= 0) {
                fprintf(stderr, "htx_client: handshake failed: %s\n", got == 0
                        ? "the server closed the connection during the handshake (wrong server "
                          "public key, or not an HTX server)"
                        : strerror(errno));
                break;
            }
            rc = betanet_noise_xk_read_frame(hs, inbuf + in_off, in_len - in_off, &used);
            in_off += used;
            if (rc < 0) {
                fprintf(stderr, "htx_client: handshake failed: %s\n", betanet_strerror(rc));
                break;
            }
        } else if (next == BETANET_NOISE_ACTION_SPLIT) {
            /* The split keys go straight into the session; bytes after message 3 stay
             * in inbuf for it. */
            rc = betanet_noise_xk_split_htx(hs, NULL, now_ms(), session);
            betanet_noise_xk_free(hs);
            if (rc != 0) {
                fprintf(stderr, "htx_client: session: %s\n", betanet_strerror(rc));
                return 1;
            }
            return 0;
        } else {
            fprintf(stderr, "htx_client: handshake failed: %s\n", betanet_strerror(next));
            break;
        }
    }
    betanet_noise_xk_free(hs);
    return 2;
}

static int seal_send(int fd, betanet_htx_session_t *s, int type, uint64_t sid, const uint8_t *pt,
                     size_t len) {
    size_t n;
    int rc = betanet_htx_session_seal(s, type, sid, pt, len, now_ms(), sealed, sizeof sealed, &n);
    if (rc != 0) {
        fprintf(stderr, "htx_client: seal: %s\n", betanet_strerror(rc));
        return -1;
    }
    return send_all(fd, sealed, n);
}

/* Send `msg` on stream 1 (FIN with the last frame), then read frames until the echo's
 * FIN; answers PINGs and credits the windows back as a receiver must. */
static int exchange(int fd, betanet_htx_session_t *s, const uint8_t *msg, size_t len,
                    uint8_t *echo, size_t *echo_len) {
    size_t max_data = betanet_htx_session_max_frame(s) - 1, off = 0, n, used, unacked = 0;
    betanet_htx_frame_t fr;
    do {
        size_t chunk = len - off < max_data ? len - off : max_data;
        int fin = off + chunk == len;
        if (betanet_htx_session_seal_stream(s, STREAM_ID, fin ? BETANET_HTX_FLAG_FIN : 0, msg + off,
                                            chunk, now_ms(), sealed, sizeof sealed, &n) != 0 ||
            send_all(fd, sealed, n) != 0) {
            fprintf(stderr, "htx_client: sending the stream failed\n");
            return 3;
        }
        off += chunk;
    } while (off < len);
    *echo_len = 0;
    for (;;) {
        int rc, got = fill(fd);
        if (got <= 0) {
            fprintf(stderr, "htx_client: the server closed the connection before the echo ended\n");
            return 3;
        }
        rc = betanet_htx_session_open(s, inbuf + in_off, in_len - in_off, &used, &fr, plain,
                                      sizeof plain);
        in_off += used;
        if (rc < 0) {
            fprintf(stderr, "htx_client: bad frame from the server: %s\n", betanet_strerror(rc));
            return 3;
        }
        if (rc == 0)
            continue;
        if (fr.type == BETANET_HTX_STREAM && fr.stream_id == STREAM_ID) {
            if (plain[0] & BETANET_HTX_FLAG_RESET) {
                fprintf(stderr, "htx_client: the server reset the stream\n");
                return 3;
            }
            if (*echo_len + fr.length - 1 > INITIAL_WINDOW) {
                fprintf(stderr, "htx_client: the server sent more than the window allows\n");
                return 3;
            }
            memcpy(echo + *echo_len, plain + 1, fr.length - 1);
            *echo_len += fr.length - 1;
            unacked += fr.length - 1;
            if (plain[0] & BETANET_HTX_FLAG_FIN)
                return 0;
            if (unacked >= INITIAL_WINDOW / 2) {     /* WINDOW_UPDATE: connection and stream */
                uint8_t v[8];
                size_t vl;
                /* A failed send is not fatal here: the server may have sent everything and
                 * closed; what it sent is still read, and an early end is caught above. */
                if (betanet_htx_varint_encode(unacked, v, sizeof v, &vl) == 0 &&
                    seal_send(fd, s, BETANET_HTX_WINDOW_UPDATE, 0, v, vl) == 0)
                    (void)seal_send(fd, s, BETANET_HTX_WINDOW_UPDATE, STREAM_ID, v, vl);
                unacked = 0;
            }
        } else if (fr.type == BETANET_HTX_PING && !(plain[0] & BETANET_HTX_FLAG_REPLY)) {
            plain[0] = BETANET_HTX_FLAG_REPLY;
            if (seal_send(fd, s, BETANET_HTX_PING, 0, plain, 9) != 0) {
                fprintf(stderr, "htx_client: answering a PING failed: %s\n", strerror(errno));
                return 3;
            }
        } else if (fr.type == BETANET_HTX_CLOSE) {
            fprintf(stderr, "htx_client: the server closed the channel: code %u, reason \"%.*s\"\n",
                    (unsigned)((plain[0] << 8) | plain[1]), (int)(fr.length - 2 > 200 ? 200 : fr.length - 2),
                    (const char *)plain + 2);
            return 3;
        }
        /* WINDOW_UPDATE, KEY_UPDATE (the session already switched keys): nothing to do */
    }
}

int main(int argc, char **argv) {
    static uint8_t echo[INITIAL_WINDOW];
    uint8_t server_public[BETANET_NOISE_KEY_BYTES];
    betanet_htx_session_t *s = NULL;
    const char *message = argc > 4 ? argv[4] : "hello from a C host";
    size_t len = strlen(message), echo_len = 0;
    int fd, rc;
    if (argc < 4 || argc > 5 || parse_key(argv[3], server_public) != 0 || len == 0 ||
        len > INITIAL_WINDOW) {
        fprintf(stderr, "usage: htx_client HOST PORT SERVER_PUBLIC_KEY_HEX [MESSAGE]\n"
                        "  (key: 64 hex characters; MESSAGE: 1..65535 bytes)\n");
        return 1;
    }
    fd = connect_tcp(argv[1], argv[2]);
    if (fd < 0) {
        fprintf(stderr, "htx_client: cannot connect to %s port %s\n", argv[1], argv[2]);
        return 1;
    }
    rc = handshake(fd, server_public, &s);
    if (rc == 0) {
        rc = exchange(fd, s, (const uint8_t *)message, len, echo, &echo_len);
        if (rc == 0 && (echo_len != len || memcmp(echo, message, len) != 0)) {
            fprintf(stderr, "htx_client: the echo differs from what was sent\n");
            rc = 3;
        }
        if (rc == 0) {
            static const uint8_t no_error[2] = {0, 0};
            printf("echo: %.*s\n", (int)echo_len, (const char *)echo);
            seal_send(fd, s, BETANET_HTX_CLOSE, 0, no_error, sizeof no_error);
        }
        betanet_htx_session_free(s);
    }
    shutdown(fd, SHUT_WR);
    close(fd);
    return rc;
}
