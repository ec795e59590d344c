* gaincell: a 2T gain cell in SkyWater sky130 (nfet_01v8), for `gaincell cell characterize`.
*
* Ports: wbl  write bitline (the value to store)
*        wwl  write word line (gate of the write transistor)
*        rwl  read word line: the PWM input pulse, at the read voltage V_in while the pulse is on
*        rbl  read bitline: held at a fixed voltage (virtual ground) by an ideal source whose current is the output
*        sn   storage node (the read transistor's gate), brought out so a sweep can force it
*
* Write transistor Mw: wbl -> sn, gate wwl.  Storage capacitance Cs: sn -> ground (an ideal capacitor standing for
* a MIM or MOS capacitor; the transistors' own gate and junction capacitances come on top).  Read transistor Mr:
* rwl -> rbl, gate sn: its current I(V_store, V_in) flows into the read bitline while the word line is high.
*
* Parameters (overridden by the decks that `gaincell cell characterize` writes; the units are the PDK's: the models
* set `.option scale=1.0u`, so W and L are in µm):
.param w_write=0.42 l_write=0.15
.param w_read=0.42 l_read=0.15
.param c_store=5f
.param v_read=0.9
.param v_bl=0

.subckt gain_cell wbl wwl rwl rbl sn
Xw wbl wwl sn 0 sky130_fd_pr__nfet_01v8 w={w_write} l={l_write}
Cs sn 0 {c_store}
Xr rwl sn rbl 0 sky130_fd_pr__nfet_01v8 w={w_read} l={l_read}
.ends gain_cell
