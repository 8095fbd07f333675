# roc.gp: ROC of owner against independent models, one curve per p-value (score -log10 p), on
# log-log axes: the chance line TPR = FPR is the straight diagonal.
# Set by the generated header: datafile, nstats, labels[1..nstats] (with the AUC and the TPR
# at FPR 0, which log axes cannot show), rate_min (the lower end of both axes), title_text,
# xlabel_text, column. Block i-1 of datafile: 1 false-positive rate, 2 true-positive rate,
# 3 the -log10 p threshold (rows with both rates above 0).
set multiplot title title_text   # centred on the picture, not on the shifted plot
set logscale x
set logscale y
set xrange [rate_min:1]
set yrange [rate_min:1]
# decade tics, with 2 and 5 between them when the axes span less than two decades
do for [e=-9:0] {
    do for [f in "1 2 5"] {
        t = real(f) * 10.0**e
        if (t >= rate_min && t <= 1 && (f eq "1" || rate_min > 0.01)) { set xtics add (sprintf("%g", t) t); set ytics add (sprintf("%g", t) t) }
    }
}
# a square plot: 2.2 in on a page (7 x 4.34 in), room for the y label on its left and the key
# on its right; in a column the column's width less the labels, below the two-line title, with
# the key below
if (column) { set size square; set tmargin 4 } else {
    set lmargin at screen 0.15; set rmargin at screen 0.15 + 2.2 / 7
    set tmargin at screen 0.82; set bmargin at screen 0.82 - 2.2 / 4.34
}
set grid lc rgb "#dddddd"
set xlabel xlabel_text
set ylabel "true-positive rate (owners)"
if (column) { set key outside bottom center vertical Left reverse samplen 2 height 1 } else {
    set key at screen 0.48, screen 0.5 left center vertical Left reverse samplen 1.5
}
plot for [i=1:nstats] datafile index (i-1) using 1:2 with linespoints lw 1.5 dt i pt (i+5) ps 0.8 lc i title labels[i], \
     x with lines dt 3 lc rgb "#555555" title "chance (TPR = FPR)"
unset multiplot
