/* The board layer of the bare-metal Sprig firmware (startup.c): output and exit
   through Arm semihosting, an instruction counter, and what the C and Swift
   code need from a libc that has no operating system under it. */
#ifndef SPRIG_BOARD_H
#define SPRIG_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Writes a NUL-terminated string to the host's standard output (SYS_WRITE0). */
void board_write(const char *text);

/* Ends the run: qemu exits with `status` (SYS_EXIT_EXTENDED). Never returns. */
void board_exit(int status) __attribute__((noreturn));

/* Ticks of the CMSDK APB timer 0, counting up from board start. It runs at
   the board's 25 MHz SYSCLK; under `qemu-system-arm -icount shift=0` one
   instruction takes 1 ns of virtual time, so one tick is 40 instructions. */
uint32_t board_ticks(void);
#define BOARD_NS_PER_TICK 40u

/* High-water marks: bytes of stack and heap used so far. */
size_t board_stack_used(void);
size_t board_heap_used(void);

#endif
