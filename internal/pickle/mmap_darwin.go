package pickle

const mapPopulate = 0
