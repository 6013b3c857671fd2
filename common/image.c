/* image: output image writers (PNG through libpng, animated GIF through giflib). */
#include "common/image.h"
#include "common/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <gif_lib.h>
#include <png.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* libpng's output goes through the outfile, so that a failed write keeps
   the system's reason (libpng alone would only say "Write Error"). */
static void s_png_write(png_structp png, png_bytep data, size_t len)
{
    outfile_t *out = png_get_io_ptr(png);
    if (fwrite(data, 1, len, outfile_stream(out)) != len) {
        outfile_failed(out, errno);
        png_error(png, "write failed");
    }
}

static void s_png_flush(png_structp png) { (void) png; }

/* libpng would print its own line on stderr: the caller says it, once. */
static void s_png_error(png_structp png, png_const_charp text)
{
    (void) text;
    png_longjmp(png, 1);
}

static void s_png_warning(png_structp png, png_const_charp text) { (void) png, (void) text; }

/* Encodes the image through write_fn(io): 0, or -1 when libpng failed. */
static int s_png_encode(png_rw_ptr write_fn, void *io, const uint8_t *pixels, uint32_t width, uint32_t height,
                        int channels)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, s_png_error, s_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, io, write_fn, s_png_flush);
    /* Large images are written often: fast compression, and the up filter
       (cheap, and good on images of smooth columns) rather than trying all. */
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_UP);
    png_set_IHDR(png, info, width, height, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t) y * width * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, char *err, size_t errlen)
{
    outfile_t *out = outfile_open(path, err, errlen);
    if (!out)
        return -1;
    if (s_png_encode(s_png_write, out, pixels, width, height, channels) < 0) {
        outfile_failed(out, ENOMEM);   /* kept only when no write failed first */
        outfile_close(&out, true, err, errlen);
        return -1;
    }
    return outfile_close(&out, true, err, errlen);
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
} s_buffer_t;

static void s_png_append(png_structp png, png_bytep data, size_t len)
{
    s_buffer_t *b = png_get_io_ptr(png);
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown)
            png_error(png, "out of memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

uint8_t *image_png_memory(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, size_t *len)
{
    s_buffer_t b = {0};
    if (s_png_encode(s_png_append, &b, pixels, width, height, channels) < 0) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* ------------------------------------------------------------ palettes */

int image_palettize(const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t palette[768],
                    uint8_t *indices, bool *exact)
{
    size_t n = (size_t) width * height;
    /* Open addressing over the 24-bit colours; 1024 slots for at most 257 keys. */
    enum { SLOTS = 1024 };
    uint32_t keys[SLOTS];
    int16_t values[SLOTS];
    memset(values, -1, sizeof values);
    int colours = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t c = (uint32_t) rgb[3 * i] << 16 | (uint32_t) rgb[3 * i + 1] << 8 | rgb[3 * i + 2];
        uint32_t h = (c * 2654435761u) >> 22;
        while (values[h] >= 0 && keys[h] != c)
            h = (h + 1) & (SLOTS - 1);
        if (values[h] < 0) {
            if (colours == 256)
                break;   /* a 257th colour: quantise instead */
            keys[h] = c;
            values[h] = (int16_t) colours;
            memcpy(palette + 3 * colours, rgb + 3 * i, 3);
            colours++;
        }
        indices[i] = (uint8_t) values[h];
    }
    *exact = i == n;
    if (*exact)
        return colours;

    GifByteType *planes = malloc(3 * n);
    if (!planes)
        return -1;
    for (i = 0; i < n; i++) {
        planes[i] = rgb[3 * i];
        planes[n + i] = rgb[3 * i + 1];
        planes[2 * n + i] = rgb[3 * i + 2];
    }
    GifColorType map[256];
    int size = 256;
    int rc = GifQuantizeBuffer(width, height, &size, planes, planes + n, planes + 2 * n, indices, map);
    free(planes);
    if (rc != GIF_OK)
        return -1;
    for (int c = 0; c < size; c++) {
        palette[3 * c] = map[c].Red;
        palette[3 * c + 1] = map[c].Green;
        palette[3 * c + 2] = map[c].Blue;
    }
    return size;
}

/* ------------------------------------------------------------ animated GIF */

struct gif_writer_t {
    GifFileType *gif;
    outfile_t *out;
    char *path;
    uint32_t width, height;
    GifPixelType *line;   /* giflib masks a line in place: each goes through this copy */
};

/* giflib's output goes through the outfile (giflib would otherwise own and
   close the descriptor). */
static int s_gif_write(GifFileType *gif, const GifByteType *data, int len)
{
    outfile_t *out = gif->UserData;
    if (fwrite(data, 1, (size_t) len, outfile_stream(out)) != (size_t) len) {
        outfile_failed(out, errno);
        return 0;
    }
    return len;
}

static void s_gif_error(char *err, size_t errlen, const char *path, int code)
{
    snprintf(err, errlen, "cannot write %s: %s", path, GifErrorString(code) ? GifErrorString(code) : "giflib error");
}

gif_writer_t *gif_writer_open(const char *path, uint32_t width, uint32_t height, char *err, size_t errlen)
{
    gif_writer_t *self = calloc(1, sizeof *self);
    self->path = strdup(path);
    self->width = width;
    self->height = height;
    self->line = malloc(width ? width : 1);
    if (!self->line) {
        snprintf(err, errlen, "cannot write %s: out of memory", path);
        gif_writer_close(&self, false, NULL, 0);
        return NULL;
    }
    int code = 0;
    self->out = outfile_open(path, err, errlen);
    self->gif = self->out ? EGifOpen(self->out, s_gif_write, &code) : NULL;
    if (!self->gif) {
        if (self->out)
            s_gif_error(err, errlen, path, code);
        gif_writer_close(&self, false, NULL, 0);
        return NULL;
    }
    EGifSetGifVersion(self->gif, true);
    /* Loop forever: the NETSCAPE2.0 application extension, count 0. */
    static const GifByteType loop[] = {1, 0, 0};
    if (EGifPutScreenDesc(self->gif, (int) width, (int) height, 8, 0, NULL) == GIF_ERROR
        || EGifPutExtensionLeader(self->gif, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR
        || EGifPutExtensionBlock(self->gif, 11, "NETSCAPE2.0") == GIF_ERROR
        || EGifPutExtensionBlock(self->gif, 3, loop) == GIF_ERROR
        || EGifPutExtensionTrailer(self->gif) == GIF_ERROR) {
        s_gif_error(err, errlen, path, self->gif->Error);
        gif_writer_close(&self, false, NULL, 0);
        return NULL;
    }
    return self;
}

int gif_writer_frame(gif_writer_t *self, const uint8_t *palette, int ncolors, const uint8_t *indices,
                     int delay, char *err, size_t errlen)
{
    /* A colour table has a power-of-two size; unused entries are black. */
    int size = 2;
    while (size < ncolors)
        size *= 2;
    GifColorType colours[256] = {{0, 0, 0}};
    for (int c = 0; c < ncolors; c++)
        colours[c] = (GifColorType) {palette[3 * c], palette[3 * c + 1], palette[3 * c + 2]};
    ColorMapObject *map = GifMakeMapObject(size, colours);
    GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT, .UserInputFlag = false,
                                .DelayTime = delay, .TransparentColor = NO_TRANSPARENT_COLOR};
    GifByteType ext[4];
    size_t ext_len = EGifGCBToExtension(&gcb, ext);
    int rc = map ? GIF_OK : GIF_ERROR;
    if (rc == GIF_OK)
        rc = EGifPutExtension(self->gif, GRAPHICS_EXT_FUNC_CODE, (int) ext_len, ext);
    if (rc == GIF_OK)
        rc = EGifPutImageDesc(self->gif, 0, 0, (int) self->width, (int) self->height, false, map);
    /* The frame may be read-only (a result mapped from the journal): giflib
       writes to the line it is given, so it gets a copy. */
    for (uint32_t y = 0; rc == GIF_OK && y < self->height; y++) {
        memcpy(self->line, indices + (size_t) y * self->width, self->width);
        rc = EGifPutLine(self->gif, self->line, (int) self->width);
    }
    GifFreeMapObject(map);
    if (rc != GIF_OK) {
        if (outfile_error(self->out))
            snprintf(err, errlen, "cannot write %s: %s", self->path, strerror(outfile_error(self->out)));
        else
            s_gif_error(err, errlen, self->path, self->gif->Error);
        return -1;
    }
    return 0;
}

int gif_writer_close(gif_writer_t **self_p, bool commit, char *err, size_t errlen)
{
    gif_writer_t *self = *self_p;
    if (!self)
        return 0;
    int rc = 0, code = 0;
    if (self->gif && EGifCloseFile(self->gif, &code) == GIF_ERROR && commit && self->out)
        outfile_failed(self->out, EIO);   /* a write error recorded first wins */
    if (outfile_close(&self->out, commit, err, errlen) < 0)
        rc = -1;
    free(self->line);
    free(self->path);
    free(self);
    *self_p = NULL;
    return rc;
}
