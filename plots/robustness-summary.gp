# robustness-summary.gp: every attack setting of an experiment in one figure, one row each.
# Set by the generated header: datafile, nlines, labels[1..nlines] (owner series), has_indep
# (1 when block nlines holds the independent models), seeds_drawn (1: with few seeds, blocks
# nlines+1 .. 2*nlines hold each owner series' seeds: -log10 p, row position), nsettings, settings[1..nsettings] (row
# labels, top to bottom), alpha, xtop (right end of the -log10 p axis), lpcap (the largest
# -log10 p the test can give; -1: none), xlabel_p, title_text,
# column (1: one paper column, panels stacked), top1/bot1 and top2/bot2 (the panels' top and
# bottom, fractions of the height), keyline (one key line, a fraction of the height). Data columns: 1 row position (setting i at nsettings - i,
# series spread around it), 2 models, 3 identification rate, 4-6 -log10 p (centre, low, high:
# the seeds' median and range with few seeds, else the mean and its 95% t-CI; never outside
# [0, lpcap]), 7-9 test accuracy (the same, within [0, 1]), 10 95th percentile of -log10 p,
# 11-12 the identification rate's Wilson 95% interval.
# Every setting is a point with its interval: no line joins different attacks.
set multiplot title title_text
set yrange [-0.6:nsettings - 0.4]
set grid xtics lc rgb "#dddddd"
set ytics scale 0 ()
do for [i=1:nsettings] { set ytics add (settings[i] (nsettings - i)) }
# keys: below the panels in a column, above each panel on a page
if (column) {
    set key at screen 0.02, screen 0.01 + 2 * keyline left bottom vertical Left reverse samplen 1.5
    set lmargin at screen 0.52; set rmargin at screen 0.96
} else {
    set key at screen 0.31, screen top1 + 0.02 left bottom vertical Left reverse samplen 1.5
    set lmargin at screen 0.31; set rmargin at screen 0.64
}
set tmargin at screen top1; set bmargin at screen bot1
set arrow 1 from first -log10(alpha), graph 0 to first -log10(alpha), graph 1 nohead dt 2 lw 1.5 lc rgb "#aa0000"
if (lpcap > 0) { set arrow 2 from first lpcap, graph 0 to first lpcap, graph 1 nohead dt 1 lw 1 lc rgb "#999999" }
set xlabel xlabel_p offset 0, 0.3
set xrange [0:xtop]
plot for [i=1:nlines] datafile index (i-1) using 4:1:5:6 with xerrorbars pt 7 ps 0.6 lc i title labels[i], \
     for [i=1:nlines*seeds_drawn] datafile index (nlines + i) using 1:2 with points pt 6 ps 0.5 lc i notitle, \
     for [i=1:has_indep] datafile index nlines using 10:1 with points pt 2 ps 0.8 lc rgb "#555555" title "independents, 95th pct.", \
     NaN with lines dt 2 lw 1.5 lc rgb "#aa0000" title sprintf("alpha = %g", alpha), \
     for [i=1:(lpcap > 0)] NaN with lines dt 1 lw 1 lc rgb "#999999" title sprintf("smallest p possible (%.2g)", 10**-lpcap)
unset arrow 1; unset arrow 2
set tmargin at screen top2; set bmargin at screen bot2
if (column) {
    set key at screen 0.02, screen 0.01 left bottom vertical Left reverse samplen 1.5
} else {
    set key at screen 0.70, screen top1 + 0.02 left bottom vertical Left reverse samplen 1.5
    set lmargin at screen 0.67; set rmargin at screen 0.97
    set ytics scale 0 ()
    do for [i=1:nsettings] { set ytics add ("" (nsettings - i)) }
}
set xlabel "fraction"
set xrange [0:1.02]
plot for [i=1:nlines] datafile index (i-1) using 7:1:8:9 with xerrorbars pt 5 ps 0.5 lc i notitle, \
     for [i=1:nlines] datafile index (i-1) using 3:1:11:12 with xerrorbars pt 6 ps 0.7 lc i notitle, \
     NaN with points pt 5 ps 0.5 lc rgb "black" title "accuracy", \
     NaN with points pt 6 ps 0.7 lc rgb "black" title "identified (Wilson)"
unset multiplot
