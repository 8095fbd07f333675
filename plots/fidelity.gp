# fidelity.gp: owner against clean test accuracy, paired by seed, per architecture.
# Set by the generated header: datafile, ngroups, labels[1..ngroups], lo, hi, title_text.
# Block i-1 of datafile: one row per seed: 1 clean accuracy, 2 owner accuracy, 3-4 the
# group's mean clean and owner accuracy, 5-6 their 95% CI half-widths (repeated on each row).
set title title_text
set xrange [lo:hi]
set yrange [lo:hi]
set size ratio -1
set grid lc rgb "#dddddd"
set xlabel "clean model test accuracy (fraction)"
set ylabel "owner model test accuracy (fraction)"
set key outside right top vertical Left reverse
plot x with lines dt 2 lc rgb "#777777" title "y = x (lossless)", \
     for [i=1:ngroups] datafile index (i-1) using 1:2 with points pt 6 ps 1.2 lc i title labels[i].": each seed", \
     for [i=1:ngroups] datafile index (i-1) every ::0::0 using 3:4:5:6 with xyerrorbars pt 7 ps 1.8 lw 2 lc i title labels[i].": mean, 95% CI"
