//! HDLC frame format type 3 (IEC 62056-46): (to be written)
