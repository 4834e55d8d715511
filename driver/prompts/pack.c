/* placeholder until implemented */
typedef int sf_placeholder_pack;
