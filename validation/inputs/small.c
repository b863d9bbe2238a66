/* A small C file for the corpus's `gcc -c` entry. */
#include <stdio.h>

struct point { int x, y; };

static int dot(struct point a, struct point b) { return a.x * b.x + a.y * b.y; }

int sum_dots(const struct point *p, int n) {
    int s = 0;
    for (int i = 1; i < n; i++)
        s += dot(p[i - 1], p[i]);
    return s;
}

void print_dots(const struct point *p, int n) {
    printf("%d\n", sum_dots(p, n));
}
