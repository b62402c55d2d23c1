/* A built-in 5x7 bitmap font for labels in PNG pictures (sample grids): printable ASCII,
 * upper case only (a lower-case letter is drawn as its capital, anything outside
 * ' '..'~' as '?'). Glyphs are drawn on a 6 x 8 cell (one blank column and row between
 * characters), each font pixel a scale x scale square. */
#ifndef FLOWRL_FONT5X7_H
#define FLOWRL_FONT5X7_H

#include <stdint.h>

#define FR_FONT_W 5
#define FR_FONT_H 7
#define FR_FONT_ADVANCE 6 /* cell width, font pixels */
#define FR_FONT_LINE 8    /* cell height, font pixels */

/* Whether font pixel (row, col) of character c is ink; row in [0, 7), col in [0, 5). */
int fr_font_pixel(char c, int row, int col);

/* Width in image pixels of the first n characters of a line at the given scale. */
int fr_font_width(int n_chars, int scale);

/* Draws the first n bytes of s (stopping early at a NUL) with its top-left cell corner at
 * (x, y) into an (H, W, 3) image; pixels outside the image are clipped. */
void fr_font_draw(uint8_t *rgb, // (H, W, 3)
                  int H, int W, int x, int y, const char *s, int n, int scale,
                  const uint8_t color[3]);

#endif
