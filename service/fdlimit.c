/* fdlimit.c -- keep the process below its descriptor limit (see fdlimit.h). */
#include "fdlimit.h"

#include <sys/resource.h>

bool fo_fd_over_share(int fd, enum fo_fd_use use)
{
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return false;
    rlim_t free_part = use == FO_FD_CLIENT ? rl.rlim_cur / 4 : rl.rlim_cur / 8;
    if (free_part < 8)
        free_part = 8;
    return (rlim_t)fd + free_part >= rl.rlim_cur;
}

void fo_fd_raise_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}
