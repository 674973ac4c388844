/* tools/libc-check: the portable parts of Targets/linux/libc.c, built for the
   host with the names prefixed tl_, against independent references: the host C
   library for fmaf, floor, ceil, round and roundf (bit for bit, with glibc's
   fmaf as the correctly rounded reference) and for strerror's texts, byte loops for the memory
   functions, and a shadow map for the allocator (no two live blocks overlap,
   every payload keeps its bytes, alignment holds). Exit 0 and "libc-check: PASS"
   when all hold. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

float tl_fmaf(float, float, float);
double tl_floor(double), tl_ceil(double), tl_round(double);
float tl_roundf(float);
void *tl_memcpy(void *, const void *, size_t), *tl_memmove(void *, const void *, size_t), *tl_memset(void *, int, size_t);
int tl_memcmp(const void *, const void *, size_t);
size_t tl_strlen(const char *);
const char *tl_strerror(int);
int tl_posix_memalign(void **, size_t, size_t);
void tl_free(void *);

static uint64_t state = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void) { /* splitmix64 */
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float f32bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bitsf(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static double f64bits(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint64_t bitsd(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/* Floats whose exponents cluster where cancellation and rounding ties happen. */
static float some_float(void) {
    uint64_t r = next();
    switch (r & 7) {
    case 0: return f32bits((uint32_t)(r >> 32));                              /* every pattern, NaN and inf too */
    case 1: return f32bits((uint32_t)((r >> 40) & 0x807fffff));               /* subnormals and zeros */
    case 2: return (float)((int)(r >> 40) % 512) / 64.0f;                     /* short significands: exact sums */
    default: return f32bits((uint32_t)(((r >> 32) & 0x807fffff) | ((uint32_t)(120 + (r >> 20) % 16) << 23)));
    }
}
static int same_f(float a, float b) { return bitsf(a) == bitsf(b) || (a != a && b != b); }
static int same_d(double a, double b) { return bitsd(a) == bitsd(b) || (a != a && b != b); }

int main(void) {
    int failures = 0;
    long cases = 0;

    /* fmaf: random triples, and triples whose z cancels most of x·y. */
    for (long i = 0; i < 4000000; i++) {
        float x = some_float(), y = some_float(), z = some_float();
        if (i & 1) z = -(float)((double)x * y) * (1 + (float)(int)(next() % 5 - 2) * 0x1p-23f) + some_float() * 0x1p-30f;
        float got = tl_fmaf(x, y, z), want = fmaf(x, y, z);
        cases++;
        if (!same_f(got, want) && failures++ < 10)
            printf("fmaf(%a, %a, %a): %a, expected %a\n", x, y, z, got, want);
    }

    /* floor, ceil, round, roundf: every exponent, halfway points, specials. */
    static const double specials[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994,
                                      -0.49999999999999994, 4503599627370495.5, -4503599627370495.5, 1e300, -1e-300,
                                      INFINITY, -INFINITY, NAN};
    for (long i = 0; i < 2000000 + (long)(sizeof specials / sizeof specials[0]); i++) {
        double x;
        if (i < (long)(sizeof specials / sizeof specials[0])) x = specials[i];
        else if (i & 1) x = f64bits(next());
        else x = (double)(int64_t)(next() >> (12 + next() % 52)) / (double)(1 << (next() % 4)) * ((next() & 1) ? -1 : 1);
        float xf = (float)x;
        if (i & 2) xf = f32bits((uint32_t)next());
        cases += 4;
        if (!same_d(tl_floor(x), floor(x)) && failures++ < 10) printf("floor(%a): %a, expected %a\n", x, tl_floor(x), floor(x));
        if (!same_d(tl_ceil(x), ceil(x)) && failures++ < 10) printf("ceil(%a): %a, expected %a\n", x, tl_ceil(x), ceil(x));
        if (!same_d(tl_round(x), round(x)) && failures++ < 10) printf("round(%a): %a, expected %a\n", x, tl_round(x), round(x));
        if (!same_f(tl_roundf(xf), roundf(xf)) && failures++ < 10) printf("roundf(%a): %a, expected %a\n", xf, tl_roundf(xf), roundf(xf));
    }

    /* Memory functions against byte loops, at every alignment and length up to 80, overlapping too. */
    unsigned char a[256], b[256], ref[256];
    for (long i = 0; i < 200000; i++) {
        for (int k = 0; k < 256; k++) a[k] = (unsigned char)next();
        memcpy(b, a, 256);
        memcpy(ref, a, 256);
        size_t n = next() % 81, d = next() % 90, s = next() % 90;
        int op = (int)(next() % 4);
        cases++;
        if (op == 0) { /* memmove, overlapping or not */
            unsigned char tmp[256];
            for (size_t k = 0; k < n; k++) tmp[k] = ref[s + k];
            for (size_t k = 0; k < n; k++) ref[d + k] = tmp[k];
            tl_memmove(b + d, b + s, n);
        } else if (op == 1) { /* memcpy between the two buffers */
            size_t from = 100 + s % 76; /* from + n ≤ 255 */
            for (size_t k = 0; k < n; k++) ref[d + k] = a[from + k];
            tl_memcpy(b + d, a + from, n);
        } else if (op == 2) {
            int c = (int)(next() & 0x1ff) - 128; /* the byte is c converted to unsigned char */
            for (size_t k = 0; k < n; k++) ref[d + k] = (unsigned char)c;
            tl_memset(b + d, c, n);
        } else {
            if (next() & 1) b[s + next() % (n + 1)] ^= (unsigned char)(1 + next() % 255);
            memcpy(ref, b, 256);
            int want = 0;
            for (size_t k = 0; k < n; k++)
                if (a[d + k] != b[s + k]) { want = a[d + k] < b[s + k] ? -1 : 1; break; }
            int got = tl_memcmp(a + d, b + s, n);
            if ((got > 0) - (got < 0) != want && failures++ < 10) printf("memcmp: %d, expected %d (n %zu)\n", got, want, n);
        }
        if (memcmp(b, ref, 256) != 0 && failures++ < 10) printf("memory op %d: n %zu, dst %zu, src %zu: wrong bytes\n", op, n, d, s);
    }
    for (size_t n = 0; n < 40; n++) {
        char text[64];
        memset(text, 'x', n);
        text[n] = 0;
        cases++;
        if (tl_strlen(text) != n && failures++ < 10) printf("strlen: %zu, expected %zu\n", tl_strlen(text), n);
    }

    /* strerror: the codes it names as glibc names them; the others "Unknown error N",
       down to INT_MIN (the longest). */
    static const int extremes[] = {INT_MIN, INT_MIN + 1, INT_MAX, -1000000000, 1000000000};
    for (int i = -300; i <= 300 + (int)(sizeof extremes / sizeof extremes[0]); i++) {
        int code = i <= 300 ? i : extremes[i - 301];
        const char *got = tl_strerror(code);
        char want[64];
        if (strncmp(got, "Unknown error ", 14) == 0) snprintf(want, sizeof want, "Unknown error %d", code);
        else snprintf(want, sizeof want, "%s", strerror(code));
        cases++;
        if (strcmp(got, want) != 0 && failures++ < 10) printf("strerror(%d): '%s', expected '%s'\n", code, got, want);
    }

    /* The allocator: 4,000 live slots, random sizes up to 600 KB (past the largest class),
       alignments 1 to 4096; every live block holds its own pattern until freed. */
    enum { SLOTS = 4000 };
    static struct { unsigned char *p; size_t n; unsigned char tag; } live[SLOTS];
    for (long i = 0; i < 300000; i++) {
        int k = (int)(next() % SLOTS);
        if (live[k].p) {
            for (size_t j = 0; j < live[k].n; j += 1 + live[k].n / 64)
                if (live[k].p[j] != live[k].tag) {
                    if (failures++ < 10) printf("allocator: block %d lost its bytes\n", k);
                    break;
                }
            tl_free(live[k].p);
            live[k].p = 0;
            continue;
        }
        size_t n = (next() % 100 == 0) ? next() % 600000 : next() % 3000;
        size_t align = (size_t)1 << (next() % 13);
        void *p = 0;
        cases++;
        if (tl_posix_memalign(&p, align, n) != 0 || !p) {
            if (failures++ < 10) printf("posix_memalign(%zu, %zu) failed\n", align, n);
            continue;
        }
        if (((uintptr_t)p & (align - 1)) && failures++ < 10) printf("posix_memalign: %p not aligned to %zu\n", p, align);
        live[k].p = p;
        live[k].n = n;
        live[k].tag = (unsigned char)(k * 7 + 1);
        memset(p, live[k].tag, n);
    }
    void *p = 0;
    cases += 2;
    if (tl_posix_memalign(&p, 24, 8) != 22 && failures++ < 10) printf("posix_memalign: alignment 24 accepted\n");
    if (tl_posix_memalign(&p, 16, (size_t)-1) != 12 && failures++ < 10) printf("posix_memalign: SIZE_MAX accepted\n");
    tl_free(0);

    printf("libc-check: %ld cases, %d failures\n", cases, failures);
    if (failures) return 1;
    printf("libc-check: PASS\n");
    return 0;
}
