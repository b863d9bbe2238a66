/* An exec chain: vfork + exec of itself with a count, three levels deep; the last
 * level runs a shell script (through its #! line), which runs /bin/true. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int level = argc > 1 ? atoi(argv[1]) : 0;
    char *buf = malloc(1 << 16);
    for (int i = 0; i < (1 << 16); i += 4096) buf[i] = (char)level;
    if (level == 3) {
        if (argc > 2) execl(argv[2], argv[2], (char *)0);
        return 0;
    }
    char next[16];
    snprintf(next, sizeof next, "%d", level + 1);
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], next, argc > 2 ? argv[2] : (char *)0, (char *)0);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
