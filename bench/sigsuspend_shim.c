/*
 * sigsuspend_shim.c - LD_PRELOAD shim that lets Valgrind 3.19 (Debian 12) run agentd; used only by
 * bench/profile.sh.
 *
 * A Swift async `main` ends in libdispatch's dispatch_main(), whose signal thread calls
 * sigsuspend() on a `static const sigset_t` that lives in read-only memory. Valgrind < 3.22 writes
 * into the mask it is given (to keep its own kill signal unblocked), which faults on read-only pages
 * and kills Valgrind ("the 'impossible' happened ... SIGSEGV", thread 1 in syscall 130). Copying the
 * mask to the stack first sidesteps that; behaviour is otherwise identical.
 *
 *   gcc -O2 -Wall -shared -fPIC -o bench/out/sigsuspend_shim.so bench/sigsuspend_shim.c
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
