/* Preloaded under valgrind 3.19 only (scripts/profile.py). libdispatch calls sigsuspend() with a mask
 * in a read-only page; valgrind 3.19 writes to the mask it is given and dies with SIGSEGV, so every
 * Swift program using concurrency crashes under it. Passing a copy on the stack avoids that. */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, sizeof(unsigned long));
}
