/* socktab.c -- the TCP sockets one curl multi opened, found by address.
 *
 * Entries live in an array indexed by fd. A bound entry (local address
 * known) sits on a chain of its bucket, chosen by local port; an entry whose
 * local address is not read yet sits on the 'unbound' list. A lookup that
 * misses reads the local address of every unbound socket and tries again:
 * a socket is bound by connect(), so by the time curl has chosen it for a
 * request its address is there to read. */
#include "socktab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>

#define NBUCKETS 1024u

enum ent_state { ENT_FREE, ENT_UNBOUND, ENT_BOUND };

struct ent {
    uint8_t state;     /* enum ent_state. */
    uint8_t family;    /* AF_INET or AF_INET6. */
    uint8_t reg;       /* EPOLLIN | EPOLLOUT bits in the worker's epoll set. */
    bool unwanted;     /* Registered, but curl no longer watches it. */
    bool input;        /* A poll saw input (or EOF, or an error) on it while unwanted. */
    uint32_t idle_gen; /* The poll generation in which it became unwanted. */
    uint16_t lport;    /* Host order; ENT_BOUND only. */
    uint16_t rport;    /* Host order. */
    uint8_t laddr[16]; /* ENT_BOUND only; 4 bytes for AF_INET. */
    uint8_t raddr[16];
    int next; /* Next fd on the same chain or list, -1 at the end. */
};

struct fo_socktab {
    struct ent *ents;    /* Indexed by fd, from realloc(). */
    size_t nents;        /* Entries allocated. */
    int heads[NBUCKETS]; /* First bound fd per bucket (lport % NBUCKETS), -1 = none. */
    int unbound;         /* First unbound fd, -1 = none. */
    uint32_t gen;        /* Poll generation: fo_socktab_polled() calls so far. */
};

int fo_socktab_create(struct fo_socktab **out)
{
    struct fo_socktab *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < NBUCKETS; i++)
        t->heads[i] = -1;
    t->unbound = -1;
    *out = t;
    return 0;
}

void fo_socktab_destroy(struct fo_socktab *t)
{
    if (!t)
        return;
    free(t->ents);
    free(t);
}

/* Read an address and port; false for other families. */
static bool split(const struct sockaddr *sa, socklen_t len, uint8_t *family, uint8_t addr[16],
                  uint16_t *port)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        *family = AF_INET;
        memcpy(addr, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        *family = AF_INET6;
        memcpy(addr, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        return true;
    }
    return false;
}

/* Unlink 'fd' from the chain or list that starts at *head. */
static void unlink_from(struct fo_socktab *t, int *head, int fd)
{
    for (int *p = head; *p >= 0; p = &t->ents[*p].next) {
        if (*p == fd) {
            *p = t->ents[fd].next;
            return;
        }
    }
}

int fo_socktab_add(struct fo_socktab *t, int fd, const struct sockaddr *peer, socklen_t len)
{
    if (fd < 0)
        return 0;
    struct ent e = {.state = ENT_UNBOUND};
    if (!split(peer, len, &e.family, e.raddr, &e.rport))
        return 0;
    if ((size_t)fd >= t->nents) {
        size_t n = t->nents ? t->nents : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct ent *ents = realloc(t->ents, n * sizeof *ents);
        if (!ents)
            return -ENOMEM;
        memset(ents + t->nents, 0, (n - t->nents) * sizeof *ents);
        t->ents = ents;
        t->nents = n;
    }
    /* A number curl closed behind our back (a connection it closes after its
     * transfer was removed from the multi does not always go through the close
     * callback): unlink the old entry before the list head is read, or an fd
     * at the head of 'unbound' would point at itself. */
    fo_socktab_remove(t, fd);
    e.next = t->unbound;
    t->ents[fd] = e;
    t->unbound = fd;
    return 0;
}

void fo_socktab_remove(struct fo_socktab *t, int fd)
{
    if (fd < 0 || (size_t)fd >= t->nents)
        return;
    struct ent *e = &t->ents[fd];
    if (e->state == ENT_UNBOUND)
        unlink_from(t, &t->unbound, fd);
    else if (e->state == ENT_BOUND)
        unlink_from(t, &t->heads[e->lport % NBUCKETS], fd);
    e->state = ENT_FREE;
}

static struct ent *known(const struct fo_socktab *t, int fd)
{
    if (fd < 0 || (size_t)fd >= t->nents || t->ents[fd].state == ENT_FREE)
        return NULL;
    return &t->ents[fd];
}

int fo_socktab_reg(const struct fo_socktab *t, int fd)
{
    const struct ent *e = known(t, fd);
    return e ? e->reg : -1;
}

bool fo_socktab_wanted(const struct fo_socktab *t, int fd)
{
    const struct ent *e = known(t, fd);
    return !e || !e->unwanted;
}

void fo_socktab_set_reg(struct fo_socktab *t, int fd, unsigned events, bool wanted)
{
    struct ent *e = known(t, fd);
    if (e) {
        if (!wanted && !e->unwanted)
            e->idle_gen = t->gen;
        e->reg = (uint8_t)events;
        e->unwanted = !wanted;
    }
}

void fo_socktab_polled(struct fo_socktab *t)
{
    t->gen++;
}

void fo_socktab_mark_input(struct fo_socktab *t, int fd)
{
    struct ent *e = known(t, fd);
    if (e && e->unwanted)
        e->input = true;
}

int fo_socktab_idle_input(const struct fo_socktab *t, int fd)
{
    const struct ent *e = known(t, fd);
    if (!e || !e->unwanted)
        return -1;
    if (e->input)
        return 1;
    /* Still registered for input since before the last poll, and that poll
     * reported nothing for it (fo_socktab_mark_input would have said). */
    return (e->reg & EPOLLIN) && e->idle_gen != t->gen ? 0 : -1;
}

/* Read the local address of every unbound socket that has one. */
static void bind_all(struct fo_socktab *t)
{
    int *p = &t->unbound;
    while (*p >= 0) {
        int fd = *p;
        struct ent *e = &t->ents[fd];
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        uint8_t family;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
            !split((struct sockaddr *)&ss, len, &family, e->laddr, &e->lport) || e->lport == 0) {
            p = &e->next;
            continue;
        }
        *p = e->next;
        e->state = ENT_BOUND;
        e->next = t->heads[e->lport % NBUCKETS];
        t->heads[e->lport % NBUCKETS] = fd;
    }
}

static bool parse_ip(const char *s, uint8_t *family, uint8_t addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static int lookup(struct fo_socktab *t, uint8_t family, const uint8_t *raddr, int rport,
                  const uint8_t *laddr, int lport)
{
    size_t alen = family == AF_INET ? 4 : 16;
    for (int fd = t->heads[(unsigned)lport % NBUCKETS]; fd >= 0; fd = t->ents[fd].next) {
        const struct ent *e = &t->ents[fd];
        if (e->lport == lport && e->rport == rport && e->family == family &&
            memcmp(e->raddr, raddr, alen) == 0 && memcmp(e->laddr, laddr, alen) == 0)
            return fd;
    }
    return -1;
}

int fo_socktab_find(struct fo_socktab *t, const char *rip, int rport, const char *lip, int lport)
{
    uint8_t rf, lf;
    uint8_t raddr[16], laddr[16];
    if (!rip || !lip || !parse_ip(rip, &rf, raddr) || !parse_ip(lip, &lf, laddr) || rf != lf ||
        lport <= 0 || lport > 65535)
        return -1;
    int fd = lookup(t, rf, raddr, rport, laddr, lport);
    if (fd < 0 && t->unbound >= 0) {
        bind_all(t);
        fd = lookup(t, rf, raddr, rport, laddr, lport);
    }
    return fd;
}
