/* placeholder until implemented */
typedef int sf_placeholder_data_paths;
