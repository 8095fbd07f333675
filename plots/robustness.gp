# robustness.gp: ownership evidence and accuracy against the strength of one attack.
# Set by the generated header: datafile, nlines, labels[1..nlines], has_indep (1 when block
# nlines of datafile holds the independent models), seeds_drawn (1: with few seeds, the next
# nlines blocks hold each owner line's seeds: strength, -log10 p), alpha, ytop (top of the -log10 p
# axis), lpcap (the largest -log10 p the test can give; -1: none), xlog (1: log-scale x),
# xlabel_text, xlabel_short (the swept key alone, for the narrower second panel), ylabel_p,
# title_text (two lines). Data columns: 1 strength, 2 models, 3 identification
# rate, 4-6 -log10 p (centre, low, high: the seeds' median and range with few seeds, else the
# mean and its 95% t-CI; never outside [0, lpcap]), 7-9 test accuracy (the same, within
# [0, 1]), 10 un-attacked -log10 p, 11 un-attacked test accuracy, 12-13 the identification
# rate's Wilson 95% interval. Panels: evidence, then the two fractions; side by side on a
# page, stacked in a column (column = 1); keys below; x tics at the settings.
if (column) { set multiplot layout 2,1 title title_text } else { set multiplot layout 1,2 title title_text }
set grid lc rgb "#dddddd"
set key outside bottom center vertical Left reverse samplen 2 maxcols 2 height 1
set style fill transparent solid 0.18 noborder
if (xlog) { set logscale x }
set xlabel xlabel_text
set ylabel ylabel_p
set yrange [0:ytop]
set offsets graph 0.03, graph 0.03, 0, 0
plot for [i=1:nlines] datafile index (i-1) using 1:5:6 with filledcurves lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 1:4:xtic(1) with linespoints lw 2 pt 7 lc i title labels[i], \
     for [i=1:nlines] datafile index (i-1) using 1:10 with lines dt 2 lw 1.5 lc i notitle, \
     for [i=1:nlines*seeds_drawn] datafile index (nlines + has_indep + i - 1) using 1:2 with points pt 7 ps 0.5 lc i notitle, \
     for [i=1:has_indep] datafile index nlines using 1:5:6 with filledcurves lc rgb "#888888" notitle, \
     for [i=1:has_indep] datafile index nlines using 1:4 with linespoints lw 2 pt 6 dt 3 lc rgb "#555555" title "independent models", \
     -log10(alpha) with lines dt 4 lw 1.5 lc rgb "#aa0000" title sprintf("alpha = %g", alpha), \
     for [i=1:(lpcap > 0)] lpcap with lines dt 1 lw 1 lc rgb "#999999" title sprintf("smallest p possible (%.2g)", 10**-lpcap), \
     NaN with lines dt 2 lw 1.5 lc rgb "black" title "un-attacked owner"
set ylabel "fraction"
set xlabel xlabel_short
set yrange [0:1.05]
set offsets graph 0.03, graph 0.03, 0, 0
plot for [i=1:nlines] datafile index (i-1) using 1:8:9 with filledcurves lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 1:7:xtic(1) with linespoints lw 2 dt 4 pt 5 lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 1:3 with linespoints lw 2 pt 7 lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 1:3:12:13 with yerrorbars pt 7 lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 1:11 with lines dt 2 lw 1.5 lc i notitle, \
     NaN with linespoints lw 2 pt 7 lc rgb "black" title "identification rate (Wilson 95%)", \
     NaN with linespoints lw 2 dt 4 pt 5 lc rgb "black" title "test accuracy", \
     NaN with lines dt 2 lw 1.5 lc rgb "black" title "un-attacked accuracy"
unset multiplot
