/* curl_probe.c -- the libcurl floor: CPU per backend transfer with nothing else around it.
 *
 *   curl_probe CONCURRENCY TOTAL URL [URL...]
 *
 * DESIGN: one thread, one multi handle driven by curl_multi_socket_action on an epoll set (as
 * fanout's workers drive theirs), CONCURRENCY easy handles reused for every transfer, cycling
 * through the URLs (each parsed once into a CURLU handle that every transfer to it is given, as
 * fanout's transfers keep theirs), over the multi's kept-alive connections. A warm-up of 2 x CONCURRENCY
 * transfers opens the connections; then TOTAL transfers are timed. Bodies are counted, not kept.
 * Prints one JSON line: transfers, errors, wall seconds, user and sys CPU per transfer (getrusage
 * of the process over the timed part), new connections seen in the timed part. The timed part
 * is the function measured(), for callgrind's --toggle-collect.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

/* The probe's state: one instance in main(). */
struct probe {
    CURLM *multi;     /* The one multi handle. */
    int ep;           /* epoll descriptor. */
    long timeout_ms;  /* From the timer callback; -1 = none. */
    char **urls;      /* Borrowed from argv. */
    CURLU **uh;       /* From curl_url(): urls[i] parsed once, as fanout keeps them. */
    int nurls;        /* Entries in urls. */
    long started;     /* Transfers added so far. */
    long done;        /* Transfers finished so far. */
    long limit;       /* Transfers to run in this phase. */
    long errors;      /* Transfers that did not end in 200. */
    long bytes;       /* Body bytes received. */
    long opened;      /* Sockets opened (new connections). */
};

static size_t on_write(char *p, size_t size, size_t n, void *data)
{
    struct probe *pr = data;
    pr->bytes += (long)(size * n);
    return size * n;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *data, void *sockp)
{
    struct probe *pr = data;
    struct epoll_event ev = {0};
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(pr->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(pr->multi, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (sockp == NULL) {
        epoll_ctl(pr->ep, EPOLL_CTL_ADD, s, &ev);
        curl_multi_assign(pr->multi, s, pr);
    } else {
        epoll_ctl(pr->ep, EPOLL_CTL_MOD, s, &ev);
    }
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *data)
{
    struct probe *pr = data;
    pr->timeout_ms = timeout_ms;
    return 0;
}

static curl_socket_t on_open(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct probe *pr = data;
    pr->opened++;
    return socket(a->family, a->socktype, a->protocol);
}

/* Adds easy handle 'e' for the next transfer if the phase wants more. */
static void start(struct probe *pr, CURL *e)
{
    if (pr->started >= pr->limit)
        return;
    int u = (int)(pr->started % pr->nurls);
    curl_easy_setopt(e, CURLOPT_URL, pr->urls[u]);
    curl_easy_setopt(e, CURLOPT_CURLU, pr->uh[u]);
    pr->started++;
    curl_multi_add_handle(pr->multi, e);
}

static void reap(struct probe *pr)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(pr->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (msg->data.result != CURLE_OK || code != 200)
            pr->errors++;
        pr->done++;
        curl_multi_remove_handle(pr->multi, e);
        start(pr, e);
    }
}

/* Runs 'count' transfers on 'n' handles; returns when all are done. */
static void run(struct probe *pr, CURL **easy, int n, long count)
{
    int running = 0;
    pr->started = pr->done = 0;
    pr->limit = count;
    for (int i = 0; i < n; i++)
        start(pr, easy[i]);
    curl_multi_socket_action(pr->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    while (pr->done < count) {
        struct epoll_event evs[64];
        int t = pr->timeout_ms < 0 ? 1000 : (int)pr->timeout_ms;
        int k = epoll_wait(pr->ep, evs, 64, t);
        if (k < 0 && errno != EINTR)
            break;
        if (k <= 0) {
            curl_multi_socket_action(pr->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        } else {
            for (int i = 0; i < k; i++) {
                int mask = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                           (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                           (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(pr->multi, evs[i].data.fd, mask, &running);
            }
        }
        reap(pr);
    }
}

/* The timed transfers, in a function of their own: `valgrind --tool=callgrind
 * --toggle-collect=measured` counts the instructions of these alone (bench.py's floor of
 * instructions per transfer), not the start-up's or the warm-up's. */
static __attribute__((noinline)) void measured(struct probe *pr, CURL **easy, int n, long count)
{
    run(pr, easy, n, count);
}

static double tv_us(struct timeval tv)
{
    return tv.tv_sec * 1e6 + tv.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONCURRENCY TOTAL URL [URL...]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    long total = atol(argv[2]);
    struct probe pr = {.timeout_ms = -1, .urls = argv + 3, .nurls = argc - 3};
    if (n < 1 || total < 1 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 2;
    pr.uh = calloc((size_t)pr.nurls, sizeof(*pr.uh));
    for (int i = 0; pr.uh && i < pr.nurls; i++) {
        pr.uh[i] = curl_url();
        if (!pr.uh[i] || curl_url_set(pr.uh[i], CURLUPART_URL, pr.urls[i],
                                      CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
            fprintf(stderr, "bad URL: %s\n", pr.urls[i]);
            return 2;
        }
    }
    if (!pr.uh)
        return 1;
    pr.ep = epoll_create1(EPOLL_CLOEXEC);
    pr.multi = curl_multi_init();
    curl_multi_setopt(pr.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(pr.multi, CURLMOPT_SOCKETDATA, &pr);
    curl_multi_setopt(pr.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(pr.multi, CURLMOPT_TIMERDATA, &pr);
    curl_multi_setopt(pr.multi, CURLMOPT_MAXCONNECTS, (long)n);
    CURL **easy = calloc((size_t)n, sizeof(*easy));
    if (easy == NULL || pr.ep < 0 || pr.multi == NULL)
        return 1;
    for (int i = 0; i < n; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &pr);
        curl_easy_setopt(easy[i], CURLOPT_OPENSOCKETFUNCTION, on_open);
        curl_easy_setopt(easy[i], CURLOPT_OPENSOCKETDATA, &pr);
        curl_easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(easy[i], CURLOPT_PROXY, "");
    }
    run(&pr, easy, n, 2L * n); /* warm-up: open the connections */
    long warm_err = pr.errors, warm_open = pr.opened;
    pr.errors = pr.bytes = 0;

    struct rusage r0, r1;
    struct timespec t0, t1;
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    measured(&pr, easy, n, total);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);

    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double usr = (tv_us(r1.ru_utime) - tv_us(r0.ru_utime)) / (double)pr.done;
    double sys = (tv_us(r1.ru_stime) - tv_us(r0.ru_stime)) / (double)pr.done;
    printf("{\"probe\":\"curl\",\"concurrency\":%d,\"transfers\":%ld,\"errors\":%ld,"
           "\"warmup_errors\":%ld,\"bytes\":%ld,\"new_conns\":%ld,\"wall_s\":%.3f,"
           "\"per_s\":%.0f,\"user_us_per_op\":%.2f,\"sys_us_per_op\":%.2f,"
           "\"cpu_us_per_op\":%.2f}\n",
           n, pr.done, pr.errors, warm_err, pr.bytes, pr.opened - warm_open, wall,
           pr.done / wall, usr, sys, usr + sys);
    for (int i = 0; i < n; i++)
        curl_easy_cleanup(easy[i]);
    for (int i = 0; i < pr.nurls; i++)
        curl_url_cleanup(pr.uh[i]);
    curl_multi_cleanup(pr.multi);
    curl_global_cleanup();
    return pr.errors ? 1 : 0;
}
