/* read()s the file named by argv[1] in 64 KiB chunks into one buffer, twice (the
 * second time from the page cache). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char buf[64 << 10];

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: file_read FILE\n"); return 2; }
    unsigned long total = 0;
    for (int pass = 0; pass < 2; pass++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) { perror(argv[1]); return 1; }
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            total += n;
        if (n < 0) { perror("read"); return 1; }
        close(fd);
    }
    return total == 0;
}
