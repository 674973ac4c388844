/* The C library of the static Linux sprig-edge (aarch64 and armv7 hard-float):
   exactly what the Embedded Swift program and the runtime call, on raw Linux
   system calls, in place of glibc's 600 KB.

   tools/cross-build links it with -nostdlib -static and libgcc (integer
   division and the soft 64-bit helpers). What is here, by the symbols the
   Swift object leaves undefined (`nm -u`):
   - the process: _start, exit, getpid, kill, raise (for libgcc), the stack-protector guard;
   - files: open, read, write, close, lseek, fsync, rename, unlink, and
     opendir/readdir/closedir, whose entries are the kernel's `linux_dirent64`
     records (the name at byte 19 on both targets);
   - memory: mmap, munmap, posix_memalign and free (size classes over mmap'd
     chunks), memcpy, memmove, memset, memcmp, strlen, and on armv7 the ARM EABI
     __aeabi_mem* entry points;
   - errno, strerror, putchar, clock_gettime, arc4random_buf (getrandom);
   - armv7 only (no FMA and no rounding instructions in VFPv3-D16): fmaf,
     correctly rounded, and floor, ceil, round, roundf.

   Single-threaded: sprig-edge starts no threads. tools/libc-check builds the
   memory, allocator, math and strerror functions for the host under a name
   prefix, with AddressSanitizer, and compares them with the host's C library
   and with byte loops. */

#include <stddef.h>
#include <stdint.h>

#ifdef SPRIG_LIBC_PREFIX
/* tools/libc-check: the portable parts only, named tl_floor and so on. */
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(x) CAT(SPRIG_LIBC_PREFIX, x)
#define SPRIG_LIBC_PORTABLE_ONLY 1
#else
#define NAME(x) x
#endif

/* ---- memory and strings ------------------------------------------------ */

/* Word-sized loads and stores at any alignment (both targets allow unaligned
   single-word access); may_alias so the compiler assumes nothing. */
typedef size_t __attribute__((may_alias, aligned(1))) word_u;

void *NAME(memcpy)(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (; n >= sizeof(size_t); n -= sizeof(size_t), d += sizeof(size_t), s += sizeof(size_t))
        *(word_u *)d = *(const word_u *)s;
    while (n--) *d++ = *s++;
    return dst;
}

void *NAME(memmove)(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0) return dst;
    if (d < s || d >= s + n) {
        /* Forward is safe: the destination starts before the source, or after it. */
        for (; n >= sizeof(size_t); n -= sizeof(size_t), d += sizeof(size_t), s += sizeof(size_t)) {
            size_t w = *(const word_u *)s;
            *(word_u *)d = w;
        }
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        for (; n >= sizeof(size_t); n -= sizeof(size_t)) {
            d -= sizeof(size_t);
            s -= sizeof(size_t);
            size_t w = *(const word_u *)s;
            *(word_u *)d = w;
        }
        while (n--) *--d = *--s;
    }
    return dst;
}

void *NAME(memset)(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    size_t w = (unsigned char)c;
    w |= w << 8;
    w |= w << 16;
    if (sizeof(size_t) == 8) w |= (w << 16) << 16;
    for (; n >= sizeof(size_t); n -= sizeof(size_t), d += sizeof(size_t)) *(word_u *)d = w;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

int NAME(memcmp)(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

size_t NAME(strlen)(const char *s) {
    const char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}

#if defined(__arm__) && !defined(SPRIG_LIBC_PORTABLE_ONLY)
/* The ARM run-time ABI's names, which the compiler calls (note memset's order). */
void __aeabi_memcpy(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy4(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memcpy8(void *d, const void *s, size_t n) { memcpy(d, s, n); }
void __aeabi_memmove(void *d, const void *s, size_t n) { memmove(d, s, n); }
void __aeabi_memset(void *d, size_t n, int c) { memset(d, c, n); }
void __aeabi_memset4(void *d, size_t n, int c) { memset(d, c, n); }
void __aeabi_memset8(void *d, size_t n, int c) { memset(d, c, n); }
void __aeabi_memclr(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr4(void *d, size_t n) { memset(d, 0, n); }
void __aeabi_memclr8(void *d, size_t n) { memset(d, 0, n); }
#endif

/* ---- math (armv7: VFPv3-D16 has neither FMA nor rounding instructions) --- */

static inline uint64_t bits64(double x) { union { double d; uint64_t u; } v = { x }; return v.u; }
static inline double from64(uint64_t u) { union { uint64_t u; double d; } v = { u }; return v.d; }
static inline uint32_t bits32(float x) { union { float f; uint32_t u; } v = { x }; return v.u; }
static inline float from32(uint32_t u) { union { uint32_t u; float f; } v = { u }; return v.f; }

#if defined(__arm__) || defined(SPRIG_LIBC_PORTABLE_ONLY)
/* x·y + z rounded once. The product of two floats is exact in a double
   (24 + 24 bits ≤ 53); the sum is formed in double with its exact error
   (Knuth's two-sum), then rounded to odd: a sum that was inexact gets its
   last bit set. Rounding a round-to-odd double (53 bits) to float (24) is
   then the correctly rounded result, because 53 ≥ 24 + 2. */
float NAME(fmaf)(float x, float y, float z) {
    double xy = (double)x * (double)y;
    double s = xy + (double)z;
    uint64_t u = bits64(s);
    if (((u >> 52) & 0x7ff) == 0x7ff) return (float)s;  /* inf or NaN: nothing to round */
    double bz = s - xy;
    double err = (xy - (s - bz)) + ((double)z - bz);
    if (err != 0 && (u & 1) == 0) {
        /* Toward the exact value by one unit: away from zero when the error has s's sign. */
        int same = (err > 0) == (s > 0);
        u = same ? u + 1 : u - 1;
        s = from64(u);
    }
    return (float)s;
}

/* floor, ceil and round work on the bits: the fraction bits below the binary
   point of |x| (exponent e) are the low 52 − e bits of the significand. */
double NAME(floor)(double x) {
    uint64_t u = bits64(x);
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    if (e >= 52) return x;  /* integral, infinite or NaN */
    if (e < 0) {            /* |x| < 1 */
        if ((u << 1) == 0) return x;
        return (u >> 63) ? -1.0 : 0.0;
    }
    uint64_t m = 0x000fffffffffffffULL >> e;
    if ((u & m) == 0) return x;
    if (u >> 63) u += m;  /* negative: the magnitude rounds up (a carry raises the exponent) */
    return from64(u & ~m);
}

double NAME(ceil)(double x) {
    uint64_t u = bits64(x);
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    if (e >= 52) return x;
    if (e < 0) {
        if ((u << 1) == 0) return x;
        return (u >> 63) ? -0.0 : 1.0;
    }
    uint64_t m = 0x000fffffffffffffULL >> e;
    if ((u & m) == 0) return x;
    if (!(u >> 63)) u += m;
    return from64(u & ~m);
}

/* Halfway cases away from zero. */
double NAME(round)(double x) {
    uint64_t u = bits64(x);
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    if (e >= 52) return x;
    if (e < 0) {
        double one = e == -1 ? 1.0 : 0.0;  /* 0.5 ≤ |x| < 1 rounds to 1 */
        return (u >> 63) ? -one : one;
    }
    uint64_t m = 0x000fffffffffffffULL >> e;
    if ((u & m) == 0) return x;
    u += 0x0008000000000000ULL >> e;  /* half a unit of the last integral bit */
    return from64(u & ~m);
}

float NAME(roundf)(float x) {
    uint32_t u = bits32(x);
    int e = (int)((u >> 23) & 0xff) - 127;
    if (e >= 23) return x;
    if (e < 0) {
        float one = e == -1 ? 1.0f : 0.0f;
        return (u >> 31) ? -one : one;
    }
    uint32_t m = 0x007fffffu >> e;
    if ((u & m) == 0) return x;
    u += 0x00400000u >> e;
    return from32(u & ~m);
}
#endif

/* ---- messages ---------------------------------------------------------- */

static const struct { unsigned char code; const char *text; } messages[] = {
    {1, "Operation not permitted"}, {2, "No such file or directory"}, {3, "No such process"},
    {4, "Interrupted system call"}, {5, "Input/output error"}, {9, "Bad file descriptor"},
    {11, "Resource temporarily unavailable"}, {12, "Cannot allocate memory"}, {13, "Permission denied"},
    {16, "Device or resource busy"}, {17, "File exists"}, {18, "Invalid cross-device link"},
    {20, "Not a directory"}, {21, "Is a directory"}, {22, "Invalid argument"},
    {23, "Too many open files in system"}, {24, "Too many open files"}, {26, "Text file busy"},
    {27, "File too large"}, {28, "No space left on device"}, {29, "Illegal seek"},
    {30, "Read-only file system"}, {31, "Too many links"}, {36, "File name too long"},
    {40, "Too many levels of symbolic links"}, {75, "Value too large for defined data type"},
    {122, "Disk quota exceeded"},
};

const char *NAME(strerror)(int code) {
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (messages[i].code == code) return messages[i].text;
    static char unknown[32] = "Unknown error "; /* 14 + sign + 10 digits + NUL */
    char digits[12];
    int n = 0;
    unsigned v = code < 0 ? 0u - (unsigned)code : (unsigned)code;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    int at = 14;
    if (code < 0) unknown[at++] = '-';
    while (n) unknown[at++] = digits[--n];
    unknown[at] = 0;
    return unknown;
}

/* ---- system calls ------------------------------------------------------ */

#ifndef SPRIG_LIBC_PORTABLE_ONLY
#include <asm/unistd.h>

static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
    return x0;
#elif defined(__arm__)
    register long r7 __asm__("r7") = n;
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    register long r3 __asm__("r3") = d;
    register long r4 __asm__("r4") = e;
    register long r5 __asm__("r5") = f;
    __asm__ volatile("svc #0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2), "r"(r3), "r"(r4), "r"(r5) : "memory", "cc");
    return r0;
#else
#error "Targets/linux/libc.c: aarch64 and armv7 only"
#endif
}

static int errno_value;
int *__errno_location(void) { return &errno_value; }

/* The kernel returns −errno in [−4095, −1]; C returns −1 and sets errno. */
static long checked(long r) {
    if ((unsigned long)r > (unsigned long)-4096L) {
        errno_value = (int)-r;
        return -1;
    }
    return r;
}
#define SYS(n, a, b, c, d, e, f) checked(syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

#include <linux/auxvec.h>
#include <linux/fcntl.h>
#include <linux/mman.h>

__attribute__((noreturn)) void exit(int status) {
    for (;;) syscall6(__NR_exit_group, status, 0, 0, 0, 0, 0);
}

int open(const char *path, int flags, unsigned mode) { return (int)SYS(__NR_openat, AT_FDCWD, path, flags | O_LARGEFILE, mode, 0, 0); }
long read(int fd, void *buf, size_t n) { return SYS(__NR_read, fd, buf, n, 0, 0, 0); }
long write(int fd, const void *buf, size_t n) { return SYS(__NR_write, fd, buf, n, 0, 0, 0); }
int close(int fd) { return (int)SYS(__NR_close, fd, 0, 0, 0, 0, 0); }
/* off_t is long on both targets as sprig-edge declares it (LibC.swift). */
long lseek(int fd, long offset, int whence) { return SYS(__NR_lseek, fd, offset, whence, 0, 0, 0); }
int fsync(int fd) { return (int)SYS(__NR_fsync, fd, 0, 0, 0, 0, 0); }
int rename(const char *from, const char *to) { return (int)SYS(__NR_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0, 0); }
int unlink(const char *path) { return (int)SYS(__NR_unlinkat, AT_FDCWD, path, 0, 0, 0, 0); }
int getpid(void) { return (int)SYS(__NR_getpid, 0, 0, 0, 0, 0, 0); }
int kill(int pid, int sig) { return (int)SYS(__NR_kill, pid, sig, 0, 0, 0, 0); }
/* struct timespec of two longs, as sprig-edge reads it (the 32-bit call on armv7). */
int clock_gettime(int clock, long *ts) { return (int)SYS(__NR_clock_gettime, clock, ts, 0, 0, 0, 0); }

#define MAP_FAILED_PTR ((void *)-1)
#define EINTR_CODE 4
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset) {
#if defined(__arm__)
    long r = SYS(__NR_mmap2, addr, length, prot, flags, fd, offset >> 12);
#else
    long r = SYS(__NR_mmap, addr, length, prot, flags, fd, offset);
#endif
    return r == -1 ? MAP_FAILED_PTR : (void *)r;
}
int munmap(void *addr, size_t length) { return (int)SYS(__NR_munmap, addr, length, 0, 0, 0, 0); }

void arc4random_buf(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n) {
        long r = SYS(__NR_getrandom, p, n, 0, 0, 0, 0);
        if (r <= 0) {
            if (r < 0 && errno_value == EINTR_CODE) continue;
            exit(127);                            /* no randomness at all: never hand out zeros */
        }
        p += r;
        n -= (size_t)r;
    }
}

/* ---- directories: one open at a time is all sprig-edge needs ------------- */

typedef struct {
    int fd;
    int used, size;  /* the next record in buf, and how many bytes getdents64 gave */
    _Alignas(8) char buf[4096];
} DIR;
static DIR the_dir;
static int dir_open;

DIR *opendir(const char *path) {
    if (dir_open) { errno_value = 24; return 0; } /* EMFILE */
    int fd = (int)SYS(__NR_openat, AT_FDCWD, path, O_DIRECTORY | O_CLOEXEC | O_LARGEFILE, 0, 0, 0);
    if (fd < 0) return 0;
    the_dir.fd = fd;
    the_dir.used = the_dir.size = 0;
    dir_open = 1;
    return &the_dir;
}

/* The kernel's record: u64 inode, s64 offset, u16 length, u8 type, the name. */
void *readdir(DIR *d) {
    if (d->used >= d->size) {
        long n = SYS(__NR_getdents64, d->fd, d->buf, sizeof d->buf, 0, 0, 0);
        if (n <= 0) return 0;
        d->used = 0;
        d->size = (int)n;
    }
    char *entry = d->buf + d->used;
    unsigned short length;
    memcpy(&length, entry + 16, 2);
    d->used += length;
    return entry;
}

int closedir(DIR *d) {
    dir_open = 0;
    return close(d->fd);
}

/* Embedded Swift's print writes through putchar; sprig-edge itself writes
   whole lines (LibC.swift), but the SprigISA module of the dot-product build
   keeps a print in its object. Unbuffered: one byte per call. */
int putchar(int c) {
    unsigned char byte = (unsigned char)c;
    return write(1, &byte, 1) == 1 ? byte : -1;
}

/* libgcc's integer division by zero on armv7 (__aeabi_idiv0) raises SIGFPE.
   Swift checks its divisors, so this is never reached from Swift code. */
int raise(int sig) { return kill(getpid(), sig); }

/* ---- the stack protector ----------------------------------------------- */

uintptr_t __stack_chk_guard;

__attribute__((noreturn)) void __stack_chk_fail(void) {
    static const char text[] = "sprig-edge: stack smashing detected\n";
    write(2, text, sizeof text - 1);
    syscall6(__NR_kill, getpid(), 6, 0, 0, 0, 0); /* SIGABRT, as glibc does */
    exit(134);
}
#endif /* !SPRIG_LIBC_PORTABLE_ONLY */

/* ---- the allocator ----------------------------------------------------- */

/* Blocks of 2^k bytes (k = 5 … 18) come from 1 MiB chunks and go back to a
   free list of their class; bigger ones are their own mapping. A 16-byte
   header before each payload gives the block's start and its class (or its
   mapping length). */
#ifdef SPRIG_LIBC_PORTABLE_ONLY
#include <sys/mman.h>
#endif
#define MAP(n) mmap(0, (n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
#define UNMAP(p, n) munmap((p), (n))

enum { MIN_CLASS = 5, MAX_CLASS = 18, CHUNK = 1 << 20, HEADER = 16 };
typedef struct { char *block; size_t class_or_length; } header;
static void *free_lists[MAX_CLASS + 1];
static char *chunk_next, *chunk_end;

static void *take_block(int k) {
    void *b = free_lists[k];
    if (b) {
        free_lists[k] = *(void **)b;
        return b;
    }
    size_t size = (size_t)1 << k;
    if ((size_t)(chunk_end - chunk_next) < size) {
        char *c = MAP(CHUNK);
        if (c == (char *)-1) return 0;
        chunk_next = c;  /* the rest of the old chunk stays unused */
        chunk_end = c + CHUNK;
    }
    b = chunk_next;
    chunk_next += size;
    return b;
}

int NAME(posix_memalign)(void **out, size_t alignment, size_t size) {
    if (alignment < HEADER) alignment = HEADER;
    if ((alignment & (alignment - 1)) || alignment > 4096) return 22;  /* EINVAL */
    if (size > ((size_t)-1 >> 2)) return 12;                           /* ENOMEM */
    size_t need = size + HEADER + (alignment - HEADER);
    int k = MIN_CLASS;
    while (k <= MAX_CLASS && ((size_t)1 << k) < need) k++;
    char *block;
    size_t tag;
    if (k <= MAX_CLASS) {
        block = take_block(k);
        if (!block) return 12;
        tag = (size_t)k;
    } else {
        size_t length = (need + 4095) & ~(size_t)4095;
        block = MAP(length);
        if (block == (char *)-1) return 12;
        tag = length;
    }
    char *payload = (char *)(((uintptr_t)block + HEADER + alignment - 1) & ~(uintptr_t)(alignment - 1));
    header h = { block, tag };
    NAME(memcpy)(payload - HEADER, &h, sizeof h);
    *out = payload;
    return 0;
}

void NAME(free)(void *p) {
    if (!p) return;
    header h;
    NAME(memcpy)(&h, (char *)p - HEADER, sizeof h);
    if (h.class_or_length <= MAX_CLASS) {
        *(void **)h.block = free_lists[h.class_or_length];
        free_lists[h.class_or_length] = h.block;
    } else {
        UNMAP(h.block, h.class_or_length);
    }
}

/* ---- the entry point --------------------------------------------------- */

#ifndef SPRIG_LIBC_PORTABLE_ONLY
int sprig_edge_entry(int argc, char **argv);

/* The kernel's initial stack: argc, argv[], NULL, envp[], NULL, auxv pairs. */
__attribute__((noreturn, used)) static void start_c(long *sp) {
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    while (*envp) envp++;
    for (long *aux = (long *)(envp + 1); aux[0]; aux += 2)
        if (aux[0] == AT_RANDOM) /* 16 random bytes from the kernel */
            memcpy(&__stack_chk_guard, (void *)aux[1], sizeof __stack_chk_guard);
    exit(sprig_edge_entry(argc, argv));
}

#if defined(__aarch64__)
__asm__(".text\n.global _start\n.type _start,%function\n_start:\n"
        "  mov x29, #0\n  mov x30, #0\n  mov x0, sp\n  and sp, x0, #-16\n  b start_c\n");
#else
__asm__(".text\n.global _start\n.type _start,%function\n.arm\n_start:\n"
        "  mov fp, #0\n  mov lr, #0\n  mov r0, sp\n  bic sp, sp, #15\n  b start_c\n");
#endif
#endif
