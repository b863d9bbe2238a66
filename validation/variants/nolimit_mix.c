/* no limit: maps a file and reads it, writes 8 MiB, forks a child that writes half,
 * and vfork+execs /bin/true */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 1;
    int fd = open(argv[1], O_RDONLY); struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) return 1;
    volatile char *f = mmap(0, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned long n = 8UL << 20, s = 0;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f == MAP_FAILED || p == MAP_FAILED) return 1;
    for (long i = 0; i < sb.st_size; i += 4096) s += f[i];
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    pid_t c = fork();
    if (c == 0) { for (unsigned long i = 0; i < n / 2; i += 4096) p[i] = 2; _exit(0); }
    int st; waitpid(c, &st, 0);
    pid_t v = vfork();
    if (v == 0) { execl("/bin/true", "true", (char *)0); _exit(1); }
    waitpid(v, &st, 0);
    return (int)(s == 1);
}
