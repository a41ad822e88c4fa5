/* The forker loop in C (optional; see forker.py for the protocol and the Python version).
 *
 * Loaded with ctypes into the forker process and called once: it receives spawn requests,
 * forks, locks the child down (session, fds, rlimits, uid, working dir) and returns 1 *in the
 * child*, which goes on in Python; the parent never returns to Python until the server goes
 * away (returns 0). Reaped exits are reported to the server. The point is speed: the Python
 * loop writes ~140 pages per fork, each a copy-on-write fault; this loop writes almost none.
 *
 * Build: cc -O2 -shared -fPIC -o forker.so forker.c   (done and cached by isolation.py)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

struct __attribute__((packed)) vm_spawn {   /* forker.py SPAWN: "<IIIId512s" */
    uint32_t uid, kind, echo, memory_mb;
    double timeout_s;
    char workdir[512];
};

struct vm_config {
    int sock, null_fd, drop, pdeathsig, nofile, session_cpu_s;
    uint64_t vsz;
};

struct vm_child {       /* filled in the child */
    uint32_t uid, kind, echo, memory_mb;
    double timeout_s;
};

static void fail(int fd, const char *step)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "S%s: %s", step, strerror(errno));
    if (n > 0 && write(fd, buf, (size_t)n) < 0) { /* nothing left to do */ }
    _exit(111);
}

static void set_limit(int fd, int res, rlim_t v, const char *step)
{
    struct rlimit rl = {v, v};
    if (setrlimit(res, &rl) != 0) fail(fd, step);
}

static void lock_down(const struct vm_config *cfg, const struct vm_spawn *r, int p[4][2])
{
    int st = p[3][1];
    setsid();
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1000", 4) < 0) { /* best effort */ }
        close(fd);
    }
    int src[5] = {cfg->null_fd, p[1][1], p[2][1], p[3][1], p[0][0]};
    for (int i = 0; i < 5; i++) {   /* move sources out of the way of the targets 0..4 */
        src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64);
        if (src[i] < 0) fail(st, "dup");
    }
    for (int i = 0; i < 5; i++) {
        if (dup2(src[i], i) < 0) fail(st, "dup2");
        if (i >= 3 && fcntl(i, F_SETFD, FD_CLOEXEC) < 0) fail(i, "cloexec");
    }
    st = 3;
    if (syscall(SYS_close_range, 5U, ~0U, 0) != 0)
        for (int i = 5; i < 65536; i++) close(i);
    if (cfg->pdeathsig) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(st, "pdeathsig");
        if (getppid() == 1) _exit(0);
    }
    rlim_t cpu = r->timeout_s > 0 ? (rlim_t)r->timeout_s + (r->timeout_s > (rlim_t)r->timeout_s) + 1
                                  : (rlim_t)cfg->session_cpu_s;
    struct rlimit rl = {cpu, cpu + 1};
    if (setrlimit(RLIMIT_CPU, &rl) != 0) fail(st, "RLIMIT_CPU");
    set_limit(st, RLIMIT_AS, (rlim_t)(cfg->vsz + ((uint64_t)r->memory_mb << 20)), "RLIMIT_AS");
    set_limit(st, RLIMIT_NOFILE, (rlim_t)cfg->nofile, "RLIMIT_NOFILE");
    if (cfg->drop) {
        uid_t u = r->uid;
        if (setgroups(0, NULL) != 0) fail(st, "setgroups");
        if (setresgid(u, u, u) != 0) fail(st, "setresgid");
        if (setresuid(u, u, u) != 0) fail(st, "setresuid");
        if (getuid() != u || geteuid() != u || getgid() != u) fail(st, "uid check");
    }
    if (chdir(r->workdir) != 0) fail(st, "chdir");
}

static void report_exits(int sock)
{
    int status;
    struct rusage ru;
    pid_t pid;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        char msg[17];
        int32_t p32 = pid, s32 = status;
        double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
                   + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        msg[0] = 'X';
        memcpy(msg + 1, &p32, 4);
        memcpy(msg + 5, &s32, 4);
        memcpy(msg + 9, &cpu, 8);
        while (send(sock, msg, sizeof msg, 0) < 0 && errno == EINTR) {}
    }
}

static int spawn(const struct vm_config *cfg, int ep, struct vm_child *out)
{
    struct vm_spawn r;
    ssize_t n = recv(cfg->sock, &r, sizeof r, 0);
    if (n == 0) return 0;
    if (n != (ssize_t)sizeof r) return n < 0 && errno == EINTR ? 2 : -1;
    r.workdir[sizeof r.workdir - 1] = 0;
    int p[4][2];
    for (int i = 0; i < 4; i++)
        if (pipe2(p[i], O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(ep);
        lock_down(cfg, &r, p);
        out->uid = r.uid; out->kind = r.kind; out->echo = r.echo;
        out->memory_mb = r.memory_mb; out->timeout_s = r.timeout_s;
        return 1;
    }
    int keep[4] = {p[0][1], p[1][0], p[2][0], p[3][0]};
    close(p[0][0]); close(p[1][1]); close(p[2][1]); close(p[3][1]);
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = pfd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev) != 0) close(pfd);
    }
    char tag[5] = {'P'};
    int32_t p32 = pid;
    memcpy(tag + 1, &p32, 4);
    struct iovec iov = {tag, sizeof tag};
    union { char buf[CMSG_SPACE(sizeof keep)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof keep);
    memcpy(CMSG_DATA(c), keep, sizeof keep);
    while (sendmsg(cfg->sock, &mh, 0) < 0 && errno == EINTR) {}
    for (int i = 0; i < 4; i++) close(keep[i]);
    return 2;
}

/* Returns 1 in a new child (``out`` filled), 0 when the server closed the socket, -1 on error. */
int vm_forker_loop(const struct vm_config *cfg, struct vm_child *out)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfg->sock};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfg->sock, &ev) != 0) return -1;
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno != EINTR) return -1;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == cfg->sock) {
                int r = spawn(cfg, ep, out);
                if (r != 2) {
                    if (r != 1) close(ep);
                    return r;
                }
            } else {   /* a pidfd: that child exited */
                epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
                close(evs[i].data.fd);
            }
        }
        report_exits(cfg->sock);
    }
}
