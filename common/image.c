/* image: output image writers (PNG through libpng, animated GIF through giflib). */
#define _GNU_SOURCE   /* sched_getaffinity */
#include "common/image.h"
#include "common/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <gif_lib.h>
#include <png.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <setjmp.h>
#include <signal.h>
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

/* ------------------------------------------------------------ PNG

   A large image is compressed in bands of rows, on as many threads as the
   process has cores, the way pigz compresses a large file: each band is a
   deflate stream of its own, closed with a sync flush so that the streams
   simply follow each other (only the last is final), and the zlib check
   value is put together from the bands' (adler32_combine). Band edges
   depend on the image alone, never on the threads: the file's bytes are the
   same on every machine. When memory is short for every band at once,
   they are compressed one at a time and each written at once: the same
   bytes again. A small image goes through libpng's own writer. */

#define BANDS_MIN 2                /* fewer bands than this: libpng's writer */
#define BAND_THREADS_MAX 64        /* threads at most, this one included */
#define SLICE_BYTES (1u << 16)     /* filtered a slice at a time, kept in cache */

typedef struct {
    uint32_t y0, y1;               /* rows y0 .. y1-1 */
    uint8_t *out;                  /* its deflate stream; NULL: not compressed (yet) */
    size_t len;
    uLong adler;                   /* adler32 of its filtered bytes */
} band_t;

typedef struct {
    const uint8_t *pixels;
    size_t row;                    /* bytes of a row */
    band_t *bands;
    size_t count;
    atomic_size_t next;            /* the next band to take */
} bands_t;

/* Filters rows y0 .. y1-1 with PNG's "up" filter (type 2: each byte minus
   the one above it; above the first row, zeros) into buf. */
static void s_filter_up(const uint8_t *pixels, size_t row, uint32_t y0, uint32_t y1, uint8_t *buf)
{
    for (uint32_t y = y0; y < y1; y++, buf += row + 1) {
        const uint8_t *cur = pixels + (size_t) y * row;
        buf[0] = 2;
        if (y == 0) {
            memcpy(buf + 1, cur, row);
            continue;
        }
        const uint8_t *up = cur - row;
        for (size_t x = 0; x < row; x++)
            buf[1 + x] = (uint8_t) (cur[x] - up[x]);
    }
}

/* Compresses band into band->out. Returns 0, or -1 with band->out NULL
   when memory was short. */
static int s_band_deflate(const bands_t *b, band_t *band, bool last)
{
    size_t line = b->row + 1;
    uint32_t slice_rows = line >= SLICE_BYTES ? 1 : (uint32_t) (SLICE_BYTES / line);
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    /* A plot compresses to a few percent: the buffer starts at a quarter of
       the band and grows when that is not enough. */
    size_t raw = line * (band->y1 - band->y0), cap = raw / 4 + 1024;
    uint8_t *slice = malloc(line * slice_rows);
    band->out = malloc(cap);
    band->len = 0;
    band->adler = adler32(0, NULL, 0);
    int rc = slice && band->out ? 0 : -1;
    for (uint32_t y = band->y0; rc == 0 && y < band->y1;) {
        uint32_t y1 = band->y1 - y < slice_rows ? band->y1 : y + slice_rows;
        s_filter_up(b->pixels, b->row, y, y1, slice);
        band->adler = adler32(band->adler, slice, (uInt) (line * (y1 - y)));
        z.next_in = slice;
        z.avail_in = (uInt) (line * (y1 - y));
        y = y1;
        int flush = y < band->y1 ? Z_NO_FLUSH : last ? Z_FINISH : Z_SYNC_FLUSH;
        do {
            if (band->len == cap) {
                uint8_t *grown = realloc(band->out, cap * 2);
                if (!grown) {
                    rc = -1;
                    break;
                }
                band->out = grown, cap *= 2;
            }
            z.next_out = band->out + band->len;
            z.avail_out = (uInt) (cap - band->len);
            int zrc = deflate(&z, flush);
            band->len = cap - z.avail_out;
            if (zrc == Z_STREAM_ERROR)
                rc = -1;
        } while (rc == 0 && (z.avail_in > 0 || z.avail_out == 0));
    }
    deflateEnd(&z);
    free(slice);
    if (rc < 0) {
        free(band->out);
        band->out = NULL;
    }
    return rc;
}

static void *s_band_thread(void *arg)
{
    bands_t *b = arg;
    for (size_t i; (i = atomic_fetch_add(&b->next, 1)) < b->count;)
        (void) s_band_deflate(b, &b->bands[i], i + 1 == b->count);   /* short of memory: out stays NULL */
    return NULL;
}

/* The cores this process may run on (its affinity: taskset, a container's cpuset). */
static size_t s_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t) CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t) n : 1;
}

/* Compresses the bands on up to the cores it may use (this thread is one
   of them); a band memory was short for keeps no output. */
static void s_bands_compress(bands_t *b)
{
    size_t extra = s_cores() - 1;
    if (extra > b->count - 1)
        extra = b->count - 1;
    if (extra > BAND_THREADS_MAX - 1)
        extra = BAND_THREADS_MAX - 1;
    pthread_t tids[BAND_THREADS_MAX];
    size_t started = 0;
    sigset_t all, old;   /* stop signals stay with the calling thread */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (started < extra && pthread_create(&tids[started], NULL, s_band_thread, b) == 0)
        started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    s_band_thread(b);   /* with no thread started, this one does them all */
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
}

/* The bands as IDAT chunks, in order: the zlib header opens the first, the
   check value closes the last. A band not compressed yet (memory was short
   for all at once) is compressed here, alone; each band's buffer is freed
   once written. The bytes are the same either way. Under the caller's
   setjmp: png_error when memory is short even for one band. */
static void s_bands_write(png_structp png, bands_t *b)
{
    static const uint8_t header[2] = {0x78, 0x01};   /* deflate, 32 KiB window, fastest */
    uLong adler = 0;
    for (size_t i = 0; i < b->count; i++) {
        band_t *band = &b->bands[i];
        bool first = i == 0, last = i + 1 == b->count;
        if (!band->out && s_band_deflate(b, band, last) < 0)
            png_error(png, "out of memory");
        size_t raw = (b->row + 1) * (band->y1 - band->y0);
        adler = first ? band->adler : adler32_combine(adler, band->adler, (z_off_t) raw);
        const uint8_t check[4] = {(uint8_t) (adler >> 24), (uint8_t) (adler >> 16), (uint8_t) (adler >> 8),
                                  (uint8_t) adler};
        png_write_chunk_start(png, (png_const_bytep) "IDAT",
                              (png_uint_32) (band->len + (first ? 2 : 0) + (last ? 4 : 0)));
        if (first)
            png_write_chunk_data(png, header, 2);
        png_write_chunk_data(png, band->out, band->len);
        if (last)
            png_write_chunk_data(png, check, 4);
        png_write_chunk_end(png);
        free(band->out);
        band->out = NULL;
    }
    png_write_chunk(png, (png_const_bytep) "IEND", NULL, 0);
}

static void s_bands_free(bands_t *b)
{
    for (size_t i = 0; b->bands && i < b->count; i++)
        free(b->bands[i].out);
    free(b->bands);
}

/* Cuts the image into bands of about IMAGE_PNG_BAND_BYTES; count 0 when it is too
   small to be worth it, or memory is short. */
static void s_bands_plan(bands_t *b, const uint8_t *pixels, uint32_t height, size_t row)
{
    memset(b, 0, sizeof *b);
    size_t line = row + 1, rows = IMAGE_PNG_BAND_BYTES / line ? IMAGE_PNG_BAND_BYTES / line : 1;
    size_t count = (height + rows - 1) / rows;
    if (count < BANDS_MIN || !(b->bands = calloc(count, sizeof *b->bands)))
        return;
    b->pixels = pixels, b->row = row, b->count = count;
    for (size_t i = 0; i < count; i++) {
        b->bands[i].y0 = (uint32_t) (i * rows);
        b->bands[i].y1 = (uint32_t) ((i + 1) * rows < height ? (i + 1) * rows : height);
    }
    atomic_init(&b->next, 0);
}

/* Encodes the image through write_fn(io): 0, or -1 when libpng failed. */
static int s_png_encode(png_rw_ptr write_fn, void *io, const uint8_t *pixels, uint32_t width, uint32_t height,
                        int channels)
{
    /* The bands are compressed first, before libpng is called: a failed
       write (libpng's longjmp) then never leaves threads behind. */
    bands_t bands;
    s_bands_plan(&bands, pixels, height, (size_t) width * channels);
    if (bands.count)
        s_bands_compress(&bands);
    bool short_of_memory = false;
    for (size_t i = 0; i < bands.count; i++)
        short_of_memory |= !bands.bands[i].out;
    for (size_t i = 0; short_of_memory && i < bands.count; i++) {   /* room for libpng, and a band at a time */
        free(bands.bands[i].out);
        bands.bands[i].out = NULL;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, s_png_error, s_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        s_bands_free(&bands);
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
    if (bands.count) {
        s_bands_write(png, &bands);
    } else {
        for (uint32_t y = 0; y < height; y++)
            png_write_row(png, pixels + (size_t) y * width * channels);
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(&png, &info);
    s_bands_free(&bands);
    return 0;
}

/* Writes the image into out and closes it (committed when whole). */
static int s_write_png(outfile_t *out, const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                       char *err, size_t errlen)
{
    if (!out)
        return -1;
    if (s_png_encode(s_png_write, out, pixels, width, height, channels) < 0) {
        outfile_failed(out, ENOMEM);   /* kept only when no write failed first */
        outfile_close(&out, true, err, errlen);
        return -1;
    }
    return outfile_close(&out, true, err, errlen);
}

int image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, char *err, size_t errlen)
{
    return s_write_png(outfile_open(path, err, errlen), pixels, width, height, channels, err, errlen);
}

int image_write_png_chosen(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                           int channels, char *err, size_t errlen)
{
    return s_write_png(outfile_open_chosen(path, err, errlen), pixels, width, height, channels, err, errlen);
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
