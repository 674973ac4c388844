// The C side of Sprig's image decoding and encoding: libpng and libjpeg(-turbo) behind
// four calls that never longjmp into Swift and never abort the process.
//
// Both libraries report a fatal error by calling an error function that must not return
// (libpng: png_error → longjmp to png_jmpbuf; libjpeg: error_exit, which calls exit() by
// default). Swift cannot be unwound by longjmp, so every library call happens here, between
// a setjmp and its return; an error comes back as a nonzero status and a message.
//
// Pixels are 8-bit, rows top to bottom, channels interleaved. Decoding yields 1 channel
// (gray) or 3 (RGB):
//   PNG   gray 1/2/4/8 bit → 1; RGB → 3; palette → 3 (expanded); 16-bit → scaled to 8
//         (png_set_scale_16, v·255/65535 rounded); an alpha channel is dropped (not
//         composited); tRNS transparency is ignored.
//   JPEG  1 component → 1; YCbCr/RGB → 3; CMYK/YCCK → refused. Baseline and progressive.
//         A libjpeg warning (e.g. "Premature end of JPEG file" for a truncated file) is an
//         error here: the pixels it would give are padding, not the image.
#ifndef SPRIG_IMAGE_CODECS_H
#define SPRIG_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A decoded or encoded image, or an error. Free with sprig_image_free.
typedef struct sprig_image {
    uint8_t *bytes;      ///< decode: width·height·channels pixels; encode: the file's bytes
    size_t byte_count;   ///< bytes at `bytes`
    int width;
    int height;
    int channels;        ///< 1 or 3 after decoding
    char message[256];   ///< the library's message when the status is nonzero
} sprig_image;

/// Largest width or height accepted (the decoders refuse bigger images before allocating).
#define SPRIG_IMAGE_MAX_SIDE 16384

/// Decodes a PNG held in memory. Returns 0 on success.
int sprig_png_decode(const uint8_t *data, size_t size, sprig_image *out);

/// Decodes a JPEG (baseline or progressive) held in memory. Returns 0 on success.
int sprig_jpeg_decode(const uint8_t *data, size_t size, sprig_image *out);

/// Encodes 8-bit pixels as a PNG in memory: `channels` 1 (gray), 2 (gray+alpha), 3 (RGB)
/// or 4 (RGBA); or, when `palette` is not NULL, `pixels` are indices into `palette`
/// (`palette_count` RGB triples, 1...256) and `channels` must be 1. Returns 0 on success.
int sprig_png_encode(const uint8_t *pixels, int width, int height, int channels,
                     const uint8_t *palette, int palette_count, sprig_image *out);

/// Encodes 8-bit pixels (1 or 3 channels) as a JPEG in memory at `quality` (1...100),
/// progressive when `progressive` is nonzero. Returns 0 on success.
int sprig_jpeg_encode(const uint8_t *pixels, int width, int height, int channels,
                      int quality, int progressive, sprig_image *out);

/// Frees `image->bytes` (safe on a zeroed or failed image).
void sprig_image_free(sprig_image *image);

#ifdef __cplusplus
}
#endif
#endif
