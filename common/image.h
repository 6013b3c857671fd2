/* image: output image writers (PNG through libpng, animated GIF through giflib). */
#ifndef HY_IMAGE_H
#define HY_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A PNG of at least two bands of this many bytes (filtered rows: a byte
   more than each row's pixels) is compressed on several cores, a band each
   at a time, and written as one IDAT chunk a band. */
#define IMAGE_PNG_BAND_BYTES (1u << 21)

/* Writes an 8-bit image of width x height pixels, rows top to bottom, each row
   width * channels bytes (channels 1: grayscale, 3: RGB). The file appears
   whole or not at all: it is written beside path and renamed into place.
   Returns 0, or -1 with a one-line reason in err. */
int image_write_png(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, char *err, size_t errlen);
/* The same at a name this program chose (a frame's): a symlink or anything
   else there is replaced, never followed (outfile_open_chosen). */
int image_write_png_chosen(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                           int channels, char *err, size_t errlen);
/* The same image as PNG bytes in memory: malloc'd (caller frees), size in
   *len; NULL when memory is short. */
uint8_t *image_png_memory(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, size_t *len);

#endif

/* Turns width * height RGB pixels into at most 256 colours: palette (3 bytes
   a colour, in order of first appearance) and one index per pixel. A frame
   with more than 256 colours is quantised with giflib's median-cut
   (GifQuantizeBuffer). Returns the number of colours (1..256), or -1 when
   memory is short; *exact says whether every colour was kept. */
int image_palettize(const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t palette[768],
                    uint8_t *indices, bool *exact);

/* An animated GIF89a written frame by frame (giflib): it loops forever and
   appears at path only when closed with commit. */
typedef struct gif_writer_t gif_writer_t;

/* Caller owns the writer. NULL with a one-line reason in err. */
gif_writer_t *gif_writer_open(const char *path, uint32_t width, uint32_t height, char *err, size_t errlen);
/* Appends one frame: ncolors (1..256) palette entries, width * height
   indices, shown for delay hundredths of a second. Returns 0 or -1. */
int gif_writer_frame(gif_writer_t *self, const uint8_t *palette, int ncolors, const uint8_t *indices,
                     int delay, char *err, size_t errlen);
/* Finishes the file and renames it into place when commit, else removes it.
   Sets *self_p to NULL; harmless on NULL. Returns 0 or -1. */
int gif_writer_close(gif_writer_t **self_p, bool commit, char *err, size_t errlen);
