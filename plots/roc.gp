# roc.gp: ROC of owner against independent models, one curve per p-value (score -log10 p).
# Set by the generated header: datafile, nstats, labels[1..nstats], fpr_floor, title_text,
# xlabel_text. Block i-1 of datafile: 1 false-positive rate (0 drawn at fpr_floor, the tic "0"),
# 2 true-positive rate, 3 the -log10 p threshold.
set title title_text
set logscale x
set xrange [fpr_floor / 1.5:1.2]
set xtics ("0" fpr_floor)
# decade tics, with 2 and 5 between them when the axis spans few decades; none near "0"
do for [e=-9:0] {
    do for [f in "1 2 5"] {
        t = real(f) * 10.0**e
        if (t <= 1 && t >= 2 * fpr_floor && (f eq "1" || fpr_floor > 0.003)) { set xtics add (sprintf("%g", t) t) }
    }
}
set yrange [0:1.02]
set grid lc rgb "#dddddd"
set xlabel xlabel_text
set ylabel "true-positive rate (fraction of owner models claimed)"
set key outside right top vertical Left reverse
set rmargin 30
plot for [i=1:nstats] datafile index (i-1) using 1:2 with linespoints lw 2 dt i pt (i+5) ps (2.2 - 0.3 * i) lc i title labels[i], \
     [fpr_floor:1] x with lines dt 3 lc rgb "#555555" title "chance (TPR = FPR)"
