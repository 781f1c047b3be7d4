DROP TABLE unrecorded_charges;
