/* mhd_probe.c -- the libmicrohttpd floor: CPU per request for fanout's front end alone.
 *
 *   mhd_probe PORT THREADS      (on 127.0.0.1; PORT 0 = any; prints {"event":"listening","port":N})
 *
 * DESIGN: the daemon flags fanout's service/server.c uses (internal polling thread, epoll,
 * inter-thread channel, suspend/resume allowed, a pool of THREADS polling threads). Each request
 * is answered in phases as fanout answers an aggregate: the first handler call only attaches
 * state; the call that sees the end of the request suspends the connection and hands it to a
 * second thread through a mutex-protected queue; that thread resumes it (as fanout's workers do
 * when the last backend call ends), and the handler, called again, queues a static 200-byte
 * JSON body. Suspending before the request is complete would make libmicrohttpd answer with
 * "Connection: close", so every request would pay for a new connection. On SIGTERM or SIGINT it prints one JSON line with the requests
 * answered and the process's user and sys CPU per request over its whole life (the benchmark
 * itself reads /proc/PID/stat around the timed wrk run). The connection memory limit is
 * fanout's default max_header_bytes (8 KiB), so its memory per idle connection is fanout's floor.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* 200 bytes of JSON. */
static char body[] =
    "{\"id\":42,\"name\":\"probe\",\"ok\":true,\"ratio\":0.125,\"tags\":[\"a\",\"b\",\"c\"],"
    "\"items\":[{\"n\":0,\"label\":\"item-0000\"},{\"n\":1,\"label\":\"item-0001\"}],"
    "\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";

/* One request between its phases. */
struct req {
    struct MHD_Connection *conn; /* The suspended connection. */
    int queued;                  /* Handed to the resumer (phase 2 done). */
    int resumed;                 /* Set by the resumer before it resumes. */
    struct req *next;            /* In the resume queue. */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* Protects head, tail. */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct req *head, *tail;                           /* The resume queue. */
static struct MHD_Response *resp;                         /* Shared, persistent body. */
static unsigned long answered;                            /* Atomic add. */
static volatile sig_atomic_t stop;

static void *resumer(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == NULL)
            pthread_cond_wait(&cond, &lock);
        struct req *batch = head;
        head = tail = NULL;
        pthread_mutex_unlock(&lock);
        while (batch != NULL) {
            struct req *r = batch;
            batch = r->next;
            r->resumed = 1;
            MHD_resume_connection(r->conn); /* Outside the lock. */
        }
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    struct req *r = *con_cls;
    if (r == NULL) { /* Phase 1: the head is read; only attach (as fanout does). */
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->conn = c;
        *con_cls = r;
        return MHD_YES;
    }
    if (*data_size != 0) { /* A body: read and dropped. */
        *data_size = 0;
        return MHD_YES;
    }
    if (!r->queued) { /* Phase 2: the whole request is in; hand over and suspend. */
        r->queued = 1;
        MHD_suspend_connection(c);
        pthread_mutex_lock(&lock);
        if (tail != NULL)
            tail->next = r;
        else
            head = r;
        tail = r;
        pthread_mutex_unlock(&lock);
        pthread_cond_signal(&cond);
        return MHD_YES;
    }
    if (!r->resumed)
        return MHD_YES;
    __atomic_add_fetch(&answered, 1, __ATOMIC_RELAXED);
    return MHD_queue_response(c, MHD_HTTP_OK, resp); /* Phase 3. */
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

static void on_signal(int sig)
{
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT THREADS\n", argv[0]);
        return 2;
    }
    unsigned threads = (unsigned)atoi(argv[2]);
    resp = MHD_create_response_from_buffer(sizeof(body) - 1, body,
                                           MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* As many connections as descriptors allow, as fanout does: the benchmark's idle floor
     * holds 10,000 of them open (libmicrohttpd's own default stops at 1,020). */
    struct rlimit nofile;
    unsigned limit = 1020;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur > 64)
            limit = nofile.rlim_cur > 1000000 ? 1000000u : (unsigned)(nofile.rlim_cur - 32);
    }
    pthread_t t;
    pthread_create(&t, NULL, resumer, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE,
        threads < 1 ? 1u : threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_probe: MHD_start_daemon failed\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("{\"event\":\"listening\",\"port\":%u}\n", info ? info->port : 0);
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double usr = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec;
    double sys = ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
    unsigned long n = answered ? answered : 1;
    printf("{\"probe\":\"mhd\",\"requests\":%lu,\"user_us_per_op\":%.2f,\"sys_us_per_op\":%.2f,"
           "\"cpu_us_per_op\":%.2f}\n",
           answered, usr / n, sys / n, (usr + sys) / n);
    return 0;
}
