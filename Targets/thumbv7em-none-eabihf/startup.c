/* Startup of the bare-metal Sprig firmware for the MPS2 AN386 board
   (Cortex-M4F): the vector table, the reset handler, fault handlers that
   report and exit (a fault never hangs the run), Arm semihosting for output,
   an instruction counter, and the few functions newlib-nano and the Embedded
   Swift runtime expect from an operating system (_sbrk, posix_memalign,
   arc4random_buf, the stack-protector guard). Memory map: mps2-an386.ld. */
#include "board.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int main(void);

/* Symbols of the linker script. */
extern uint32_t sprig_data_start[], sprig_data_end[], sprig_data_load[];
extern uint32_t sprig_bss_start[], sprig_bss_end[];
extern uint8_t sprig_heap_start[], sprig_heap_end[];
extern uint32_t sprig_stack_bottom[], sprig_stack_top[];
typedef void (*init_function)(void);
extern init_function sprig_init_array_start[], sprig_init_array_end[];

/* ---- Semihosting: the operation number in r0, its argument in r1, then
   BKPT 0xAB (the M-profile trap); the result comes back in r0. ---- */
enum { SYS_WRITE0 = 0x04, SYS_EXIT_EXTENDED = 0x20 };
enum { ADP_STOPPED_APPLICATION_EXIT = 0x20026 };

static int semihost(int operation, const void *argument) {
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_write(const char *text) { semihost(SYS_WRITE0, text); }

void board_exit(int status) {
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;) __asm__ volatile("bkpt 0");  /* no semihosting host: stop here */
}

/* ---- CMSDK APB timer 0 at 0x40000000: a 32-bit down-counter at SYSCLK. ---- */
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

static void timer_start(void) {
    TIMER0_RELOAD = 0xffffffffu;
    TIMER0_VALUE = 0xffffffffu;
    TIMER0_CTRL = 1u;  /* enable, no interrupt */
}

uint32_t board_ticks(void) { return 0xffffffffu - TIMER0_VALUE; }

/* ---- Stack: painted at reset, so the untouched part can be counted. ---- */
#define STACK_PAINT 0x5350a5a5u

static void paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = sprig_stack_bottom; p < sp - 16; p++) *p = STACK_PAINT;
}

size_t board_stack_used(void) {
    const uint32_t *p = sprig_stack_bottom;
    while (p < sprig_stack_top && *p == STACK_PAINT) p++;
    return (size_t)((const uint8_t *)sprig_stack_top - (const uint8_t *)p);
}

/* ---- Heap for newlib's malloc: the .heap region, never past its end. ---- */
static uint8_t *heap_top = sprig_heap_start;

void *_sbrk(ptrdiff_t increment) {
    if (increment < 0 || increment > sprig_heap_end - heap_top) {
        errno = ENOMEM;
        return (void *)-1;
    }
    uint8_t *old = heap_top;
    heap_top += increment;
    return old;
}

size_t board_heap_used(void) { return (size_t)(heap_top - sprig_heap_start); }

/* The Embedded Swift runtime allocates with posix_memalign; newlib-nano has memalign. */
int posix_memalign(void **result, size_t alignment, size_t bytes) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = memalign(alignment, bytes);
    if (p == NULL) return ENOMEM;
    *result = p;
    return 0;
}

/* Swift's hashing asks for a random seed. The board has no entropy source and
   the firmware hashes nothing secret: a fixed sequence keeps runs repeatable. */
void arc4random_buf(void *buffer, size_t bytes) {
    uint32_t x = 0x9e3779b9u;
    uint8_t *out = buffer;
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        out[i] = (uint8_t)x;
    }
}

/* The Swift object is built with stack protectors: a smashed stack reports and exits. */
uintptr_t __stack_chk_guard = 0x2f8a5c31u;

void __stack_chk_fail(void) {
    board_write("\nsprig-board: stack smashed\n");
    board_exit(4);
}

/* ---- Faults and stray interrupts: say which, and where, then exit. ---- */
static void write_hex(uint32_t v) {
    char text[11] = "0x";
    for (int i = 0; i < 8; i++) text[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xf];
    text[10] = 0;
    board_write(text);
}

static void fault(void) {
    uint32_t ipsr, *frame;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    __asm__ volatile("mrs %0, msp" : "=r"(frame));
    board_write("\nsprig-board: exception ");
    write_hex(ipsr & 0x1ff);
    board_write(" (3 = HardFault, a Swift trap among them) at pc ");
    write_hex(frame[6]);  /* the stacked PC: r0-r3, r12, lr, pc, xpsr */
    board_write(", CFSR ");
    write_hex(*(volatile uint32_t *)0xe000ed28u);
    board_write("\n");
    board_exit(3);
}

void reset_handler(void);

/* ARMv7-M vector table: the initial stack pointer, then the handlers of the
   15 system exceptions (0 where the architecture reserves the slot), then the
   board's 32 interrupts. */
__attribute__((section(".vectors"), used))
static const void *const vectors[16 + 32] = {
    [0] = sprig_stack_top,
    [1] = (const void *)reset_handler,
    [2] = (const void *)fault,   /* NMI */
    [3] = (const void *)fault,   /* HardFault */
    [4] = (const void *)fault,   /* MemManage */
    [5] = (const void *)fault,   /* BusFault */
    [6] = (const void *)fault,   /* UsageFault */
    [11] = (const void *)fault,  /* SVCall */
    [12] = (const void *)fault,  /* DebugMonitor */
    [14] = (const void *)fault,  /* PendSV */
    [15] = (const void *)fault,  /* SysTick */
    [16 ... 47] = (const void *)fault,
};

#define SCB_CPACR (*(volatile uint32_t *)0xe000ed88u)

__attribute__((noreturn, used))
void reset_handler(void) {
    /* Full access to the FPU (coprocessors 10 and 11) before any float code. */
    SCB_CPACR |= 0xfu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = sprig_data_load, *dst = sprig_data_start; dst < sprig_data_end;) *dst++ = *src++;
    for (uint32_t *dst = sprig_bss_start; dst < sprig_bss_end;) *dst++ = 0;
    paint_stack();
    for (init_function *f = sprig_init_array_start; f < sprig_init_array_end; f++) (*f)();
    timer_start();
    board_exit(main());
}
