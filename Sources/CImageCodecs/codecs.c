// libpng and libjpeg behind setjmp: see include/sprig_image_codecs.h.
#include "sprig_image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>

static void set_message(sprig_image *out, const char *text) {
    snprintf(out->message, sizeof out->message, "%s", text ? text : "unknown error");
}

void sprig_image_free(sprig_image *image) {
    if (image == NULL) return;
    free(image->bytes);
    image->bytes = NULL;
    image->byte_count = 0;
}

// MARK: PNG

/// The state a libpng callback reaches through png_get_io_ptr / png_get_error_ptr.
typedef struct png_state {
    const uint8_t *data;   // decode: the file
    size_t size;
    size_t position;
    uint8_t *buffer;       // encode: the growing output
    size_t length;
    size_t capacity;
    sprig_image *out;      // where messages go
} png_state;

static void png_on_error(png_structp png, png_const_charp message) {
    png_state *s = (png_state *)png_get_error_ptr(png);
    set_message(s->out, message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;  // warnings (e.g. an unknown chunk) do not spoil the pixels
}

static void png_read_memory(png_structp png, png_bytep destination, png_size_t length) {
    png_state *s = (png_state *)png_get_io_ptr(png);
    if (length > s->size - s->position) png_error(png, "file truncated (read past the end)");
    memcpy(destination, s->data + s->position, length);
    s->position += length;
}

int sprig_png_decode(const uint8_t *data, size_t size, sprig_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_message(out, "not a PNG file (bad signature)");
        return 1;
    }
    png_state state = {.data = data, .size = size, .position = 8, .out = out};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
    if (png == NULL) { set_message(out, "out of memory"); return 1; }
    png_infop info = png_create_info_struct(png);
    // Allocated after setjmp; volatile so that the error path sees the current value.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(out, "out of memory");
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_set_read_fn(png, &state, png_read_memory);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, SPRIG_IMAGE_MAX_SIDE, SPRIG_IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int colorType = png_get_color_type(png, info), bitDepth = png_get_bit_depth(png, info);
    if (bitDepth == 16) png_set_scale_16(png);
    if (colorType == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (colorType == PNG_COLOR_TYPE_GRAY && bitDepth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (colorType & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    if (channels != 1 && channels != 3) png_error(png, "unexpected channel count after conversion");
    size_t rowBytes = png_get_rowbytes(png, info);
    if (rowBytes != (size_t)width * (size_t)channels) png_error(png, "unexpected row size after conversion");
    pixels = malloc(rowBytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * rowBytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->bytes = pixels;
    out->byte_count = rowBytes * height;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    return 0;
}

static void png_write_memory(png_structp png, png_bytep source, png_size_t length) {
    png_state *s = (png_state *)png_get_io_ptr(png);
    if (length > s->capacity - s->length) {
        size_t capacity = s->capacity * 2 + length + 1024;
        uint8_t *grown = realloc(s->buffer, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        s->buffer = grown;
        s->capacity = capacity;
    }
    memcpy(s->buffer + s->length, source, length);
    s->length += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

int sprig_png_encode(const uint8_t *pixels, int width, int height, int channels,
                     const uint8_t *palette, int palette_count, sprig_image *out) {
    memset(out, 0, sizeof *out);
    static const int colorTypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                      PNG_COLOR_TYPE_RGB_ALPHA};
    if (width <= 0 || height <= 0 || width > SPRIG_IMAGE_MAX_SIDE || height > SPRIG_IMAGE_MAX_SIDE ||
        channels < 1 || channels > 4 || (palette != NULL && (channels != 1 || palette_count < 1 || palette_count > 256))) {
        set_message(out, "invalid size, channel count or palette");
        return 1;
    }
    png_state state = {.out = out};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
    if (png == NULL) { set_message(out, "out of memory"); return 1; }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        set_message(out, "out of memory");
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(state.buffer);
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, &state, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 palette != NULL ? PNG_COLOR_TYPE_PALETTE : colorTypes[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette != NULL) {
        png_color entries[256];
        for (int i = 0; i < palette_count; i++) {
            entries[i].red = palette[3 * i];
            entries[i].green = palette[3 * i + 1];
            entries[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, entries, palette_count);
    }
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    out->bytes = state.buffer;
    out->byte_count = state.length;
    out->width = width;
    out->height = height;
    out->channels = channels;
    return 0;
}

// MARK: JPEG

typedef struct jpeg_error_state {
    struct jpeg_error_mgr manager;  // first, so that the library's pointer is this struct's
    jmp_buf jump;
    sprig_image *out;
} jpeg_error_state;

static void jpeg_on_error(j_common_ptr info) {
    jpeg_error_state *s = (jpeg_error_state *)info->err;
    char text[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, text);
    set_message(s->out, text);
    longjmp(s->jump, 1);
}

/// Warnings (level −1) are errors here: libjpeg pads a truncated file with gray and says
/// "Premature end of JPEG file" as a warning. Trace messages (level ≥ 0) are ignored.
static void jpeg_on_message(j_common_ptr info, int level) {
    if (level < 0) jpeg_on_error(info);
}

int sprig_jpeg_decode(const uint8_t *data, size_t size, sprig_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        set_message(out, "not a JPEG file (no SOI marker)");
        return 1;
    }
    struct jpeg_decompress_struct info;
    jpeg_error_state errors;
    uint8_t *volatile pixels = NULL;
    info.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = jpeg_on_error;
    errors.manager.emit_message = jpeg_on_message;
    errors.out = out;
    if (setjmp(errors.jump)) {
        free(pixels);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if (info.image_width > SPRIG_IMAGE_MAX_SIDE || info.image_height > SPRIG_IMAGE_MAX_SIDE) {
        set_message(out, "image larger than 16384 pixels on a side");
        jpeg_destroy_decompress(&info);
        return 1;
    }
    if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        set_message(out, "CMYK JPEG is not supported; save it as RGB");
        jpeg_destroy_decompress(&info);
        return 1;
    }
    info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&info);
    int channels = info.output_components;
    size_t rowBytes = (size_t)info.output_width * (size_t)channels;
    pixels = malloc(rowBytes * info.output_height);
    if (pixels == NULL) {
        set_message(out, "out of memory");
        jpeg_destroy_decompress(&info);
        return 1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = pixels + (size_t)info.output_scanline * rowBytes;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    out->bytes = pixels;
    out->byte_count = rowBytes * info.output_height;
    out->width = (int)info.output_width;
    out->height = (int)info.output_height;
    out->channels = channels;
    jpeg_destroy_decompress(&info);
    return 0;
}

int sprig_jpeg_encode(const uint8_t *pixels, int width, int height, int channels,
                      int quality, int progressive, sprig_image *out) {
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > SPRIG_IMAGE_MAX_SIDE || height > SPRIG_IMAGE_MAX_SIDE ||
        (channels != 1 && channels != 3) || quality < 1 || quality > 100) {
        set_message(out, "invalid size, channel count or quality");
        return 1;
    }
    struct jpeg_compress_struct info;
    jpeg_error_state errors;
    unsigned char *volatile buffer = NULL;
    unsigned long length = 0;
    info.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = jpeg_on_error;
    errors.out = out;
    if (setjmp(errors.jump)) {
        jpeg_destroy_compress(&info);
        free(buffer);
        return 1;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, (unsigned char **)&buffer, &length);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    if (progressive) jpeg_simple_progression(&info);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * width * channels);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    out->bytes = buffer;
    out->byte_count = length;
    out->width = width;
    out->height = height;
    out->channels = channels;
    return 0;
}
