/* Recursion 1,000 deep with a 4 KiB array in each frame: the stack grows by about
 * 4 MiB, one page at a time, then unwinds. */
#include <stdio.h>

static unsigned long down(int depth) {
    volatile char frame[4096];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (depth == 0)
        return frame[0];
    return down(depth - 1) + frame[sizeof frame - 1];
}

int main(void) {
    return down(1000) == 0;
}
