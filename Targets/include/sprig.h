/*
 * sprig.h — the C API of the Sprig runtime (SprigRuntime, Embedded Swift).
 *
 * Firmware written in C or C++ embeds the runtime through these functions.
 * Memory is the caller's: the blob buffer, one opaque state block and one
 * arena. Nothing is allocated by the runtime.
 *
 *   static uint8_t state[SPRIG_STATE_BYTES_MAX];   // or sprig_state_bytes()
 *   uint32_t arena_bytes;
 *   if (sprig_load(blob, blob_bytes, state, sizeof state, &arena_bytes) != SPRIG_OK) ...
 *   void *arena = aligned_alloc(16, arena_bytes);           // or a static buffer
 *   if (sprig_bind(state, arena, arena_bytes) != SPRIG_OK) ...
 *   sprig_set_input_u8(state, pixels, 784);
 *   sprig_invoke(state);
 *   int cls = sprig_argmax(state);
 *
 * Buffers (blob, state, arena) must be 16-byte aligned. The blob must stay
 * alive and unchanged while the state is used. Every function that can fail
 * returns SPRIG_OK (0) or a negative SPRIG_E_* code; sprig_error_message()
 * then describes the failure in one line (the field, the place, the values).
 */
#ifndef SPRIG_H
#define SPRIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An upper bound of sprig_state_bytes(), for static allocation. */
#define SPRIG_STATE_BYTES_MAX 2048

enum {
    SPRIG_OK = 0,
    SPRIG_E_INVALID_BLOB = -1,   /* the blob failed validation */
    SPRIG_E_STATE_TOO_SMALL = -2,/* the state block is smaller than sprig_state_bytes() */
    SPRIG_E_ARENA = -3,          /* the arena is too small or misaligned */
    SPRIG_E_ARGUMENT = -4,       /* an argument does not fit the model */
    SPRIG_E_NOT_BOUND = -5,      /* sprig_bind has not succeeded on this state */
    SPRIG_E_FINETUNE = -6,       /* fine-tuning or serialisation refused (shots, labels, plan, buffer) */
    SPRIG_E_NO_NAMES = -7        /* the blob stores no class names */
};

/* Fine-tuning methods (docs/finetune.md). BIAS, LAST and REINIT train inside
   the backbone and need a Float32 blob (an int8 blob refuses them with
   SPRIG_E_FINETUNE); LAST trains the last layer and the classifier; REINIT
   re-initialises every backbone layer (He-uniform from `seed`) and trains them
   all with the classifier, within a plan compiled for it (else SPRIG_E_FINETUNE). */
enum { SPRIG_METHOD_IMPRINT = 1, SPRIG_METHOD_HEAD = 2, SPRIG_METHOD_BIAS = 3, SPRIG_METHOD_LAST = 4,
       SPRIG_METHOD_REINIT = 5 };

/* Bytes of the opaque state block. */
size_t sprig_state_bytes(void);

/* Validates a blob and prepares `state`. Writes the arena bytes that
   inference needs to *arena_bytes (may be NULL). */
int sprig_load(const void *blob, size_t blob_bytes, void *state, size_t state_bytes, uint32_t *arena_bytes);

/* Arena bytes of the loaded model for inference, and for fine-tuning (0 = no plan). */
uint32_t sprig_arena_bytes(const void *state);
uint32_t sprig_finetune_arena_bytes(const void *state);

/* The exact work of one invoke, counted at load from the shapes (no loop
   depends on the data): multiply-accumulates, and other element operations.
   Refuse a model above your own limit before binding it. 0 when not loaded. */
uint64_t sprig_macs(const void *state);
uint64_t sprig_element_ops(const void *state);

/* Binds the arena (16-byte aligned, at least sprig_arena_bytes()). */
int sprig_bind(void *state, void *arena, size_t arena_bytes);

/* Writes one image of 8-bit pixels into the input, normalised as the blob says. */
int sprig_set_input_u8(void *state, const uint8_t *pixels, size_t count);

/* Runs the network. Cannot fail once bound; does nothing if not bound. */
void sprig_invoke(void *state);

/* Number of outputs, one output as a real number, and the index of the largest. */
int sprig_output_count(const void *state);
float sprig_output(const void *state, int index);
int sprig_argmax(const void *state);

/* The name of class `index` (output `index`), from the blob's `labels`:
   `sprig compile` stores the checkpoint's class names, `sprig-edge finetune
   --names` the new ones. Copies at most buffer_bytes - 1 bytes of UTF-8 and a
   NUL into `buffer` and returns the name's full length, as snprintf does (so
   a return >= buffer_bytes means it was cut; `buffer` may be NULL when
   buffer_bytes is 0, to ask the length). Needs a loaded blob, not a bound one.
   Returns SPRIG_E_NOT_BOUND when sprig_load has not succeeded,
   SPRIG_E_NO_NAMES when the blob stores no names (e.g. a blob tuned without
   names), SPRIG_E_ARGUMENT for an index outside 0 .. names-1 or a NULL buffer
   with buffer_bytes > 0. Reads the blob in place; allocates nothing.

     char name[32];
     if (sprig_class_name(state, sprig_argmax(state), name, sizeof name) >= 0) puts(name);  */
int sprig_class_name(const void *state, int index, char *buffer, size_t buffer_bytes);

/* Fine-tunes the classifier on `shot_count` 8-bit images (each as large as the
   input) with labels 0 .. classes-1, inside `arena` (16-byte aligned, at least
   sprig_finetune_arena_bytes()). `method` is one of SPRIG_METHOD_*; `epochs`
   0 keeps the default (30). The other knobs are the defaults that fit the
   blob's plan: Adam, or SGD for a plan sized with --finetune-optimizer sgd;
   the method's augmentation, lowered to the plan's. An unknown method, a negative `epochs`, or a
   `shot_count` whose pixel count overflows size_t returns SPRIG_E_ARGUMENT;
   shots, labels, classes and plan problems return SPRIG_E_FINETUNE. Everything
   is checked before the arena changes; the blob is never written. */
int sprig_finetune(void *state, void *arena, size_t arena_bytes, const uint8_t *shots, const uint8_t *labels,
                   size_t shot_count, int classes, int method, int epochs, uint64_t seed);

/* Bytes of the tuned blob after sprig_finetune, or a negative code. */
long sprig_tuned_blob_bytes(const void *state);

/* Writes the tuned blob into `buffer` (16-byte aligned); returns its length or a
   negative code. The same blob, shots and seed give the same bytes. */
long sprig_write_tuned_blob(const void *state, void *buffer, size_t buffer_bytes);

/* The same, naming the fine-tuned classes: `names` holds names_bytes bytes of
   UTF-8 names separated by ',' (no NUL needed), one per class in label order,
   e.g. "cat,dog,bird"; they become the tuned blob's labels, which
   sprig_class_name() and `sprig-edge run` read. A count other than the classes
   returns SPRIG_E_FINETUNE (the message names both counts). NULL or 0 bytes:
   no names, as above. */
long sprig_tuned_blob_bytes_named(const void *state, const char *names, size_t names_bytes);
long sprig_write_tuned_blob_named(const void *state, const char *names, size_t names_bytes, void *buffer,
                                  size_t buffer_bytes);

/* The last failure on this state, as a NUL-terminated line in `buffer`.
   Returns the message length (the full length, even if truncated), like
   snprintf; allocates nothing. */
size_t sprig_error_message(const void *state, char *buffer, size_t buffer_bytes);

#ifdef __cplusplus
}
#endif

#endif /* SPRIG_H */
