/* Every memory syscall the recorder follows: mmap of anonymous memory and of a file
 * (private and shared), munmap, mprotect, mremap (grow in place and move), madvise,
 * brk, System V shared memory, memfd_create, mlock, munlock, mlockall, munlockall,
 * prctl(PR_SET_THP_DISABLE), and reads and writes of a file, copy_file_range and
 * sendfile among them; MAP_POPULATE, MAP_LOCKED and mlock2; and two sleeps (nanosleep,
 * clock_nanosleep). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/shm.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "syscalls.tmp";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 1 << 20) != 0) return 1;
    volatile char sum = 0;
    char *f = mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE, fd, 0);
    for (int i = 0; i < (1 << 20); i += 4096) sum += f[i];
    munmap(f, 1 << 20);
    char *s = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 1 << 16);
    s[0] = 1;
    munmap(s, 1 << 16);
    static char buf[8192];
    if (pread(fd, buf, sizeof buf, 4096) != sizeof buf) return 1;
    if (lseek(fd, 0, SEEK_SET) != 0 || read(fd, buf, sizeof buf) != sizeof buf) return 1;
    /* A page past the end (the file grows), then 200 bytes at the position (8 KiB). */
    if (pwrite(fd, buf, 4096, 1 << 20) != 4096) return 1;
    struct iovec iov[2] = {{buf, 100}, {buf + 100, 100}};
    if (writev(fd, iov, 2) != 200) return 1;
    /* Copies inside the kernel: 8 KiB from 12 KiB (the data file's position) to the
     * start of a second file, then a page from 20 KiB (an offset pointer) after it. */
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s.copy", path);
    int cfd = open(cpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (cfd < 0 || lseek(fd, 3 * 4096, SEEK_SET) != 3 * 4096) return 1;
    if (copy_file_range(fd, NULL, cfd, NULL, 8192, 0) != 8192) return 1;
    off_t from = 5 * 4096;
    if (sendfile(cfd, fd, &from, 4096) != 4096) return 1;
    close(cfd);
    unlink(cpath);
    close(fd);
    /* On an O_APPEND descriptor, Linux's pwrite appends whatever its offset. */
    fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0 || pwrite(fd, buf, 100, 0) != 100) return 1;
    close(fd);
    unlink(path);

    char *a = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(a, 1, 1 << 16);
    madvise(a + 8192, 8192, MADV_DONTNEED);
    madvise(a + 16384, 8192, MADV_COLD);
    char *b = mremap(a, 1 << 16, 1 << 20, MREMAP_MAYMOVE);
    if (b == MAP_FAILED) return 2;
    b[(1 << 20) - 1] = 2;
    mprotect(b, 4096, PROT_READ);
    munmap(b, 1 << 20);

    char *brk0 = sbrk(0);
    sbrk(1 << 16);
    brk0[100] = 3;
    sbrk(-(1 << 16));

    int id = shmget(IPC_PRIVATE, 1 << 16, IPC_CREAT | 0600);
    char *shm = shmat(id, 0, 0);
    shm[0] = 4;
    shmdt(shm);
    shmctl(id, IPC_RMID, 0);

    int mfd = memfd_create("vmsim-test", 0);
    ftruncate(mfd, 1 << 16);
    char *m = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    m[0] = 5;
    mlock(m, 4096);
    munlock(m, 4096);
    munmap(m, 1 << 16);
    close(mfd); /* its last reference: the memfd is gone */
    /* /dev/zero mapped shared: shared anonymous memory, 16 pages. */
    int zfd = open("/dev/zero", O_RDWR);
    char *z = mmap(0, 16 << 12, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
    z[0] = 6;
    munmap(z, 16 << 12);
    close(zfd);
    /* Faulted in by the kernel: 8 pages; locked: 2 by mlock2, 2 more on fault, and
     * 3 mapped MAP_LOCKED. */
    char *pop = mmap(0, 8 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    char *lk = mmap(0, 4 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    syscall(SYS_mlock2, lk, 2 << 12, 0);
    syscall(SYS_mlock2, lk + (2 << 12), 2 << 12, 1 /* MLOCK_ONFAULT */);
    char *ml = mmap(0, 3 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    /* Mappings made from now on locked as they fault, then nothing locked. */
    mlockall(MCL_FUTURE | MCL_ONFAULT);
    munlockall();
    sum += pop[0] + lk[0] + ml[0];
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    /* 20 ms asleep, then 10 ms: two sleep events. */
    struct timespec nap = { 0, 20 * 1000 * 1000 };
    nanosleep(&nap, 0);
    nap.tv_nsec = 10 * 1000 * 1000;
    clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, 0);
    return sum;
}
